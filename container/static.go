package container

// The zos binary runs inside containers whose root filesystem has no C
// library (busybox, distroless), as /.zos/zos: link it statically.

// #cgo LDFLAGS: -static
import "C"
