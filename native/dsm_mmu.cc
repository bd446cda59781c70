// Placeholder replaced by the MMU addon.
#include <node.h>
NODE_MODULE_INIT() {}
