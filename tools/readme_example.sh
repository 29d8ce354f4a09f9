#!/bin/sh
# Writes the first ```c block of README.md to $1 (the example users copy).
awk '/^```c$/ { if (!done) { on = 1; next } } /^```$/ { if (on) { on = 0; done = 1 } } on' README.md > "$1"
