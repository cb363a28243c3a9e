//go:build !amd64

package supervise

const auditArch = 0

var deniedNumbers []int
