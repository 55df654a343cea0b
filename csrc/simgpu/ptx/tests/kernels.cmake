# Test kernels: every ptx/tests/kernels/*.cu is compiled to PTX for sm_90 by
# nvcc at build time; ptx_tests reads them from SING_PTX_KERNEL_DIR.  Without
# nvcc the kernels are missing and the tests that need them are skipped.
find_program(SING_NVCC nvcc HINTS /usr/local/cuda/bin)
file(GLOB SIM_PTX_KERNEL_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/kernels/*.cu)
set(SIM_PTX_KERNEL_DIR ${CMAKE_CURRENT_BINARY_DIR}/ptx_kernels)
set(SIM_PTX_KERNEL_OUTPUTS)
if(SING_NVCC)
  foreach(cu ${SIM_PTX_KERNEL_SOURCES})
    get_filename_component(name ${cu} NAME_WE)
    set(out ${SIM_PTX_KERNEL_DIR}/${name}.ptx)
    set(extra)
    if(name MATCHES "_debug$")
      set(extra -G)  # device debug info: .section/.loc-heavy, unoptimised PTX
    endif()
    add_custom_command(
      OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${SIM_PTX_KERNEL_DIR}
      COMMAND ${SING_NVCC} -ptx -arch=sm_90 -std=c++17 ${extra} -o ${out} ${cu}
      DEPENDS ${cu}
      COMMENT "nvcc -ptx ${name}.cu"
      VERBATIM)
    list(APPEND SIM_PTX_KERNEL_OUTPUTS ${out})
  endforeach()
endif()
add_custom_target(ptx_test_kernels DEPENDS ${SIM_PTX_KERNEL_OUTPUTS})

# Host references switch the FPU rounding mode: no constant folding under
# the assumption of round-to-nearest.
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/test_float.cpp ${CMAKE_CURRENT_LIST_DIR}/test_half.cpp
                            PROPERTIES COMPILE_OPTIONS "-frounding-math")
