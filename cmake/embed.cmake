# Turn a file into a C array (the dashboard, embedded in the binary):
#   cmake -DIN=file -DOUT=file.c -DSYM=name -DHEADER=daemon/dashboard.h -P embed.cmake
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(name ${IN} NAME)
file(WRITE ${OUT}
  "/* Generated from ${name} by cmake/embed.cmake: do not edit. */\n"
  "#include \"${HEADER}\"\n\n"
  "const unsigned char ${SYM}[] = {${bytes} 0x00};\n"
  "const size_t ${SYM}_len = sizeof(${SYM}) - 1;\n")
