# Copies a Python script with its first line set to Debian's interpreter
# path (#!/usr/bin/python3 instead of #!/usr/bin/env python3), executable.
# Invoked as: cmake -DIN=<script> -DOUT=<file> -P shebang.cmake
file(READ "${IN}" text)
string(REGEX REPLACE "^#![^\n]*\n" "#!/usr/bin/python3\n" text "${text}")
get_filename_component(dir "${OUT}" DIRECTORY)
get_filename_component(name "${OUT}" NAME)
# Written aside, then copied in with its mode (file(CHMOD) needs CMake 3.19).
file(WRITE "${dir}/.staged/${name}" "${text}")
file(COPY "${dir}/.staged/${name}" DESTINATION "${dir}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                      WORLD_READ WORLD_EXECUTE)
file(REMOVE_RECURSE "${dir}/.staged")
