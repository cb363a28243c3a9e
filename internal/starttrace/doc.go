// Package starttrace marks the stages of a container start with the system's
// monotonic clock, so one start can be broken down across the processes it
// runs (the zos CLI, libcontainer's re-executed init, `zos init` inside the
// container). It is off unless the environment variable ZOS_TRACE is set;
// then each mark is one line "zos-trace MS ROLE STAGE" on stderr, where MS is
// CLOCK_MONOTONIC in milliseconds (the same clock in every process of the
// machine, so lines of different processes can be sorted and subtracted).
//
// libcontainer's init runs with an environment of its own: it learns that
// tracing is on from the log level the parent gives it (LibcontainerLogLevel)
// and sends its marks through libcontainer's log pipe, which the parent
// prints.
//
// Owns: nothing but the trace line format.
//
// May import: the standard library and x/sys.
// Must never be imported by: nothing forbids it; it costs one environment
// lookup when tracing is off.
package starttrace
