#define TFU_IMPLEMENTATION
#define TFU_SELFTEST
#include "tensorfuse.h"
#include <stdio.h>
int main(void){int f=tfu_selftest();printf("selftest: %d failed\n",f);return f!=0;}
