{
  "targets": [
    {
      "target_name": "dsm_mmu",
      "sources": ["native/dsm_mmu.cc"],
      "cflags_cc": ["-std=c++20", "-O2", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type"],
      "cflags_cc!": ["-std=gnu++17", "-fno-rtti"],
      "defines": ["NODE_WANT_INTERNALS=0"]
    },
    {
      "target_name": "dsm_doorbell",
      "sources": ["native/dsm_doorbell.cc"],
      "cflags_cc": ["-std=c++20", "-O2", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-std=gnu++17"]
    },
    {
      "target_name": "dsm_watchdog",
      "sources": ["native/dsm_watchdog.cc"],
      "cflags_cc": ["-std=c++20", "-O2", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-std=gnu++17"]
    }
  ]
}
