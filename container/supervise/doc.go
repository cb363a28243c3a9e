// Package supervise is `zos init`, the small process manager ("core-x")
// that runs as PID 1 inside a container: it reaps every zombie, forwards
// signals to what it runs, and runs either one entrypoint (exiting with its
// status) or a set of zinit-style services described by YAML units:
//
//	exec: /bin/server --port 80   # command line (split like a shell, no expansion)
//	after: [db]                   # start once these are running (or succeeded, for oneshots)
//	test: /bin/check              # a service counts as running once this exits 0
//	oneshot: true                 # run once; success unblocks dependants
//	restart: always|on-failure|no # default always (never for oneshots)
//	env: {KEY: value}
//
// Each service's output goes to its own log file (rotated) and, prefixed
// with its name, to the supervisor's stdout.
//
// May import: the standard library, x/sys, yaml.v3, internal/starttrace.
// Must never be imported by: engines other than container (it runs inside
// containers, it is not a library for the node).
package supervise
