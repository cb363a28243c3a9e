package mount

// FlushRequests reports how many FLUSH requests m has seen.
func FlushRequests(m *Mount) int64 { return m.ops.flush.Load() }
