{
  "variables": {
    "fg_cflags": ["-O3", "-fPIC", "-ffp-contract=off", "-Wall", "-Wextra"],
  },
  "target_defaults": {
    "include_dirs": ["include", "src"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["-std=c++17", "-fexceptions"],
    "xcode_settings": {"GCC_ENABLE_CPP_EXCEPTIONS": "YES", "CLANG_CXX_LANGUAGE_STANDARD": "c++17"},
  },
  "targets": [
    {
      # Baseline-ISA code: dispatch, drivers, reference and the binding. ISA kernels live in the
      # static libraries below, each compiled with its own -m flags and reached only via dispatch.
      "target_name": "facegate_kernels",
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "cflags": ["<@(fg_cflags)"],
      "sources": [
        "binding/addon.cc",
        "src/common/conv.cc",
        "src/common/dispatch.cc",
        "src/common/gate.cc",
        "src/common/network.cc",
        "src/common/ops.cc",
        "src/common/thread_pool.cc",
        "src/ref/ref.cc",
      ],
      "conditions": [
        ["target_arch=='x64'", {"dependencies": ["facegate_avx2", "facegate_avx512_vnni"]}],
        ["target_arch=='arm64'", {"dependencies": ["facegate_neon", "facegate_neon_dotprod"]}],
      ],
    },
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "facegate_avx2",
          "type": "static_library",
          "cflags": ["<@(fg_cflags)", "-mavx2", "-mfma"],
          "sources": ["src/x86/avx2.cc"],
        },
        {
          "target_name": "facegate_avx512_vnni",
          "type": "static_library",
          # GCC 12's own avx512fintrin.h trips -Wmaybe-uninitialized (_mm512_undefined_*).
          "cflags": ["<@(fg_cflags)", "-mavx512f", "-mavx512vnni", "-Wno-maybe-uninitialized"],
          "sources": ["src/x86/avx512_vnni.cc"],
        },
      ],
    }],
    ["target_arch=='arm64'", {
      # GCC's pre-register-allocation scheduler hoists loads and products until the 16-24
      # accumulators spill to the stack; without it the k loops stay in registers.
      "targets": [
        {
          "target_name": "facegate_neon",
          "type": "static_library",
          "cflags": ["<@(fg_cflags)", "-march=armv8-a", "-fno-schedule-insns"],
          "sources": ["src/arm/neon.cc"],
        },
        {
          "target_name": "facegate_neon_dotprod",
          "type": "static_library",
          "cflags": ["<@(fg_cflags)", "-march=armv8.2-a+dotprod", "-fno-schedule-insns"],
          "sources": ["src/arm/neon_dotprod.cc"],
        },
      ],
    }],
  ],
}
