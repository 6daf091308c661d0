# Cross build for aarch64 Linux with the Debian cross gcc (gcc-aarch64-linux-gnu); ctest runs the test binaries
# under qemu-user (qemu-user). The emulated CPU is a cache variable so that both NEON paths can be tested:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake              # -cpu max
#   cmake -S . -B build-arm64-a53 -DCMAKE_TOOLCHAIN_FILE=... -DQK_QEMU_CPU=cortex-a53    # ARMv8.0: no dotprod/fp16
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(QK_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${QK_CROSS_TRIPLE}-gcc)
set(QK_CROSS_SYSROOT /usr/${QK_CROSS_TRIPLE})

set(CMAKE_FIND_ROOT_PATH ${QK_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(QK_QEMU_CPU "max" CACHE STRING "CPU model qemu-aarch64 emulates under ctest (max, cortex-a53, neoverse-n1, ...)")
# No binfmt on the build machine: ctest prefixes every test command with this list.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-cpu;${QK_QEMU_CPU};-L;${QK_CROSS_SYSROOT})
