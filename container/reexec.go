package container

import (
	"os"

	"github.com/opencontainers/runc/libcontainer"
	// nsenter's C constructor joins the container's namespaces before the
	// Go runtime starts when the binary is re-executed as `init` by
	// libcontainer; it does nothing otherwise.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	// The device cgroup manager (v1 files and v2 eBPF) is opt-in.
	_ "github.com/opencontainers/cgroups/devices"
)

// IsLibcontainerInit says whether this process was re-executed by
// libcontainer to become a container's first process (argv[1] "init" plus
// libcontainer's pipe in the environment). `zos init` run by a user or as a
// container's PID 1 has no such pipe.
func IsLibcontainerInit() bool {
	return len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_LIBCONTAINER_INITPIPE") != ""
}

// LibcontainerInit finishes setting up the container and execs its process.
// It never returns. Call it first thing in main when IsLibcontainerInit.
func LibcontainerInit() {
	libcontainer.Init()
}
