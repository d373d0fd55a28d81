#include <stdio.h>
int main(void) { puts("mailprobe: under construction"); return 0; }
