// A shared library that announces itself when loaded (see libguard_test.go).
#include <stdio.h>

__attribute__((constructor)) static void announce(void) {
	printf("LOADED %s\n", WHO);
	fflush(stdout);
}
