# find_package(tensorfuse) after `make install PREFIX=...`: the INTERFACE
# target tensorfuse::tensorfuse carries the include directory and what the
# implementation links against (libm, threads). This file sits in
# PREFIX/lib/cmake/tensorfuse.
get_filename_component(_tfu_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET tensorfuse::tensorfuse)
  include(CMakeFindDependencyMacro)
  find_dependency(Threads)
  add_library(tensorfuse::tensorfuse INTERFACE IMPORTED)
  set_target_properties(tensorfuse::tensorfuse PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_tfu_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;$<$<NOT:$<PLATFORM_ID:Windows>>:m>")
endif()
unset(_tfu_prefix)
