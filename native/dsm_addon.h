// What the V8 addons (dsm_mmu.cc, dsm_doorbell.cc) share: throwing an error
// with a stable dsm code, exporting a method, and the bytes behind a typed
// array or SharedArrayBuffer argument. (dsm_watchdog.cc speaks Node-API.)
#pragma once

#include <node.h>
#include <v8.h>

#include <cstdint>
#include <string>

namespace dsm_addon {

// Throws an Error whose `code` is one of src/errors.ts's (through generated/dsm_constants.h).
inline void Throw(v8::Isolate* isolate, const char* code, const std::string& message) {
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::Local<v8::Value> error = v8::Exception::Error(v8::String::NewFromUtf8(isolate, message.c_str()).ToLocalChecked());
  error.As<v8::Object>()->Set(context, v8::String::NewFromUtf8Literal(isolate, "code"),
                              v8::String::NewFromUtf8(isolate, code).ToLocalChecked()).Check();
  isolate->ThrowException(error);
}

// exports[name] = a function calling `callback`, named `name`.
inline void SetMethod(v8::Local<v8::Context> context, v8::Local<v8::Object> exports, const char* name, v8::FunctionCallback callback) {
  v8::Isolate* isolate = context->GetIsolate();
  v8::Local<v8::Function> function = v8::FunctionTemplate::New(isolate, callback)->GetFunction(context).ToLocalChecked();
  v8::Local<v8::String> key = v8::String::NewFromUtf8(isolate, name).ToLocalChecked();
  function->SetName(key);
  exports->Set(context, key, function).Check();
}

// The first byte of a typed array's (or DataView's) elements.
inline uint8_t* ViewData(v8::Local<v8::ArrayBufferView> view) {
  return static_cast<uint8_t*>(view->Buffer()->Data()) + view->ByteOffset();
}

// The 4-byte-aligned Int32 word at args[offset_index] (a byte offset) of the SharedArrayBuffer
// args[buffer_index], or null with an exception thrown (`what` names the caller in its message).
inline int32_t* SharedWordArg(const v8::FunctionCallbackInfo<v8::Value>& args, int buffer_index, int offset_index, const char* code, const char* what) {
  v8::Isolate* isolate = args.GetIsolate();
  if (args.Length() <= buffer_index || args.Length() <= offset_index || !args[buffer_index]->IsSharedArrayBuffer() || !args[offset_index]->IsUint32()) {
    Throw(isolate, code, std::string(what) + ": a SharedArrayBuffer and a byte offset");
    return nullptr;
  }
  v8::Local<v8::SharedArrayBuffer> buffer = args[buffer_index].As<v8::SharedArrayBuffer>();
  uint32_t offset = args[offset_index].As<v8::Uint32>()->Value();
  if (offset % 4 != 0 || uint64_t{offset} + 4 > buffer->ByteLength()) {
    Throw(isolate, code, std::string(what) + ": the word is not within the buffer");
    return nullptr;
  }
  return reinterpret_cast<int32_t*>(static_cast<uint8_t*>(buffer->Data()) + offset);
}

}  // namespace dsm_addon
