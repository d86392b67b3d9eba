# libtorch for fedvar, from Debian's libtorch-dev (1.13) or from a PyTorch
# wheel (2.x), found through CMAKE_PREFIX_PATH as usual:
#
#   cmake -S . -B build -DCMAKE_PREFIX_PATH="$(python3 -c \
#     'import torch; print(torch.utils.cmake_prefix_path)')"
#
# Gives the target `torch`, FEDVAR_TORCH_VERSION and FEDVAR_TORCH_CXX_STANDARD
# (the C++ standard this libtorch's headers need: 20 from 2.13 on, else 17).
# Included at the top level: a CUDA wheel's TorchConfig.cmake enables the
# CUDA language, which only works at directory scope.
#
# FEDVAR_TORCH_IMPORT chooses how the target is made:
#   CONFIG  libtorch's own TorchConfig.cmake. For a CUDA build this also
#           finds the CUDA toolkit (nvcc, and its version must match).
#   LIBS    the headers and shared libraries next to TorchConfig.cmake and
#           nothing else: fedvar has no CUDA sources, and a wheel's
#           libraries find their CUDA runtime (the nvidia-* wheels) by their
#           own RUNPATH. Needs no CUDA toolkit.
#   AUTO    CONFIG, except for a CUDA libtorch where no nvcc is found.
set(FEDVAR_TORCH_IMPORT AUTO CACHE STRING "How to import libtorch: AUTO, CONFIG or LIBS")
set_property(CACHE FEDVAR_TORCH_IMPORT PROPERTY STRINGS AUTO CONFIG LIBS)

# TorchConfig.cmake, located without loading it (loading a CUDA wheel's can
# stop the configuration for want of nvcc). Searched as find_package would:
# Torch_DIR, then each prefix of CMAKE_PREFIX_PATH, then the system's.
string(REPLACE ":" ";" _fedvar_env_prefixes "$ENV{CMAKE_PREFIX_PATH}")
find_file(FEDVAR_TORCH_CONFIG NAMES TorchConfig.cmake torch-config.cmake
  HINTS ${Torch_DIR} $ENV{Torch_DIR}
  PATHS ${CMAKE_PREFIX_PATH} ${_fedvar_env_prefixes} ${CMAKE_SYSTEM_PREFIX_PATH}
  PATH_SUFFIXES . Torch cmake/Torch share/cmake/Torch lib/cmake/Torch
                lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake/Torch
  NO_DEFAULT_PATH
  DOC "libtorch's TorchConfig.cmake")
if(NOT FEDVAR_TORCH_CONFIG)
  message(FATAL_ERROR
    "libtorch not found: install Debian's libtorch-dev, or point CMAKE_PREFIX_PATH "
    "at a PyTorch wheel's: python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'")
endif()
get_filename_component(_fedvar_torch_dir "${FEDVAR_TORCH_CONFIG}" DIRECTORY)

# The install prefix: <prefix>/share/cmake/Torch in a wheel,
# <prefix>/lib/<arch>/cmake/Torch in Debian's package.
foreach(_up ../../.. ../../../..)
  get_filename_component(_fedvar_p "${_fedvar_torch_dir}/${_up}" ABSOLUTE)
  if(EXISTS "${_fedvar_p}/include/torch/csrc/api/include/torch/torch.h")
    set(_fedvar_torch_prefix "${_fedvar_p}")
    break()
  endif()
endforeach()
if(NOT _fedvar_torch_prefix)
  message(FATAL_ERROR "no libtorch headers (include/torch/csrc/api) near ${FEDVAR_TORCH_CONFIG}")
endif()
set(_fedvar_torch_libdirs "${_fedvar_torch_prefix}/lib" "${_fedvar_torch_dir}/../..")

file(STRINGS "${_fedvar_torch_dir}/TorchConfigVersion.cmake" _fedvar_v
     REGEX "set\\(PACKAGE_VERSION \"[0-9.]+")
string(REGEX MATCH "[0-9]+\\.[0-9]+(\\.[0-9]+)?" FEDVAR_TORCH_VERSION "${_fedvar_v}")
if(FEDVAR_TORCH_VERSION VERSION_GREATER_EQUAL 2.13)
  set(FEDVAR_TORCH_CXX_STANDARD 20)  # its headers use C++20, 2.14's require it
else()
  set(FEDVAR_TORCH_CXX_STANDARD 17)
endif()

# fedvar's other dependencies (gtest, spdlog, fmt: Debian's) use the C++11
# string ABI; a libtorch built with the old one cannot link with them.
file(STRINGS "${FEDVAR_TORCH_CONFIG}" _fedvar_old_abi REGEX "_GLIBCXX_USE_CXX11_ABI=0")
if(_fedvar_old_abi)
  message(FATAL_ERROR
    "${FEDVAR_TORCH_CONFIG} is built with _GLIBCXX_USE_CXX11_ABI=0 and cannot link with "
    "the C++11-ABI libraries fedvar uses; take a PyTorch built with the C++11 ABI "
    "(python3 -c 'import torch; print(torch.compiled_with_cxx11_abi())' says True)")
endif()

find_library(FEDVAR_TORCH_CUDA_LIBRARY torch_cuda PATHS ${_fedvar_torch_libdirs}
             NO_DEFAULT_PATH)
set(_fedvar_import "${FEDVAR_TORCH_IMPORT}")
if(_fedvar_import STREQUAL "AUTO")
  set(_fedvar_import CONFIG)
  if(FEDVAR_TORCH_CUDA_LIBRARY)
    find_program(FEDVAR_NVCC nvcc HINTS ENV CUDA_HOME ENV CUDA_PATH ENV CUDA_TOOLKIT_ROOT_DIR
                 PATH_SUFFIXES bin PATHS /usr/local/cuda/bin)
    if(NOT FEDVAR_NVCC)
      set(_fedvar_import LIBS)
    endif()
  endif()
endif()

if(_fedvar_import STREQUAL "CONFIG")
  find_package(Torch REQUIRED CONFIG PATHS "${_fedvar_torch_dir}" NO_DEFAULT_PATH)
elseif(_fedvar_import STREQUAL "LIBS")
  find_package(Threads REQUIRED)
  foreach(_lib torch torch_cpu c10 torch_cuda c10_cuda)
    find_library(FEDVAR_TORCH_LIB_${_lib} ${_lib} PATHS ${_fedvar_torch_libdirs}
                 NO_DEFAULT_PATH)
  endforeach()
  if(NOT FEDVAR_TORCH_LIB_torch_cpu OR NOT FEDVAR_TORCH_LIB_c10)
    message(FATAL_ERROR "no libtorch_cpu / libc10 in ${_fedvar_torch_libdirs}")
  endif()
  # Linked whether or not fedvar calls into them: libtorch_cuda registers the
  # CUDA backend when it is loaded (as TorchConfig.cmake links it).
  set(_fedvar_link ${FEDVAR_TORCH_LIB_torch_cpu} ${FEDVAR_TORCH_LIB_c10} Threads::Threads)
  foreach(_lib torch torch_cuda c10_cuda)
    if(FEDVAR_TORCH_LIB_${_lib})
      list(APPEND _fedvar_link "-Wl,--no-as-needed,${FEDVAR_TORCH_LIB_${_lib}},--as-needed")
    endif()
  endforeach()
  # The linker checks libtorch_cuda's own dependencies: the nvidia-* wheels
  # beside torch/ hold them.
  file(GLOB _fedvar_nvidia_libdirs LIST_DIRECTORIES true
       "${_fedvar_torch_prefix}/../nvidia/*/lib")
  foreach(_dir ${_fedvar_nvidia_libdirs})
    list(APPEND _fedvar_link "-Wl,-rpath-link,${_dir}")
  endforeach()
  add_library(torch INTERFACE IMPORTED)
  set_target_properties(torch PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES
      "${_fedvar_torch_prefix}/include;${_fedvar_torch_prefix}/include/torch/csrc/api/include"
    INTERFACE_LINK_LIBRARIES "${_fedvar_link}")
else()
  message(FATAL_ERROR "FEDVAR_TORCH_IMPORT is AUTO, CONFIG or LIBS, not ${FEDVAR_TORCH_IMPORT}")
endif()

if(FEDVAR_TORCH_CUDA_LIBRARY)
  set(_fedvar_cuda "with CUDA")
else()
  set(_fedvar_cuda "CPU only")
endif()
message(STATUS "libtorch ${FEDVAR_TORCH_VERSION} (${_fedvar_cuda}) at ${_fedvar_torch_prefix}, "
               "imported by ${_fedvar_import}, its headers need C++${FEDVAR_TORCH_CXX_STANDARD}")
