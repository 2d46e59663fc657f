# Turns every file of the dashboard folder into a byte array in one C++ source, so the
# binary serves the page by itself (no install step, no files to lose beside it).
# Run at build time: cmake -DSOURCE_DIR=<dashboard folder> -DOUTPUT=<file.cpp> -P this file
cmake_minimum_required(VERSION 3.25)

file(GLOB files RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/*.html" "${SOURCE_DIR}/*.js"
     "${SOURCE_DIR}/*.css")
list(SORT files)
if(NOT files)
  message(FATAL_ERROR "no dashboard files in ${SOURCE_DIR}")
endif()

set(arrays "")
set(table "")
set(index 0)
foreach(name IN LISTS files)
  file(READ "${SOURCE_DIR}/${name}" hex HEX)
  string(LENGTH "${hex}" digits)
  math(EXPR size "${digits} / 2")
  # Byte arrays rather than string literals: any content is safe, whatever quotes or
  # backslashes it holds, and no compiler limit on literal length applies.
  set(bytes "")
  set(pos 0)
  while(pos LESS digits)  # 32 bytes a line
    string(SUBSTRING "${hex}" ${pos} 64 chunk)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," chunk "${chunk}")
    string(APPEND bytes "    ${chunk}\n")
    math(EXPR pos "${pos} + 64")
  endwhile()
  string(APPEND arrays "const unsigned char file${index}[] = {\n${bytes}    0x00};\n")
  string(APPEND table "    {\"${name}\", {reinterpret_cast<const char*>(file${index}), ${size}}},\n")
  math(EXPR index "${index} + 1")
endforeach()

set(text "// Generated from dashboard/ by cmake/embed_dashboard.cmake: do not edit.
#include \"control/dashboard_files.hpp\"

namespace im::control {
namespace {
${arrays}
const DashboardFile kFiles[] = {
${table}};
}  // namespace

std::span<const DashboardFile> dashboard_files() { return kFiles; }

}  // namespace im::control
")

# Written only when it changed, so an unchanged page does not relink the binary.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${text}")
