// A dynamically linked test program for the exec guard's library and memfd
// checks (see libguard_test.go).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x10U
#endif

extern char **environ;

int main(int argc, char **argv) {
	if (argc > 2 && strcmp(argv[1], "dlopen") == 0) {
		void *h = dlopen(argv[2], RTLD_NOW);
		printf("dlopen=%s\n", h ? "ok" : "refused");
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "memfd") == 0) {
		int fd = memfd_create("x", MFD_EXEC);
		printf("memfd_exec=%s\n", fd >= 0 ? "ok" : "refused");
		fd = memfd_create("y", MFD_CLOEXEC);
		int in = open("/proc/self/exe", O_RDONLY);
		char buf[65536];
		ssize_t n;
		while ((n = read(in, buf, sizeof buf)) > 0) {
			if (write(fd, buf, n) != n) {
				return 1;
			}
		}
		char *args[] = {"prog", "from-memfd", NULL};
		fflush(stdout);
		fexecve(fd, args, environ);
		printf("fexecve=refused errno=%d\n", errno);
		void *m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
		printf("mmap_exec=%s\n", m == MAP_FAILED ? "refused" : "ok");
		return 0;
	}
	printf("hello %s\n", argc > 1 ? argv[1] : "");
	return 0;
}
