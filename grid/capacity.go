package grid

// Capacity is an amount of node resources: logical cores (CRU), memory
// (MRU), SSD (SRU) and HDD (HRU) in bytes, and public IPv4 addresses (IPV4U).
type Capacity struct {
	CRU   uint64 `json:"cru"`
	MRU   uint64 `json:"mru"`
	SRU   uint64 `json:"sru"`
	HRU   uint64 `json:"hru"`
	IPV4U uint64 `json:"ipv4u"`
}

// Add returns c + o.
func (c Capacity) Add(o Capacity) Capacity {
	return Capacity{c.CRU + o.CRU, c.MRU + o.MRU, c.SRU + o.SRU, c.HRU + o.HRU, c.IPV4U + o.IPV4U}
}

// Sub returns c - o, each field floored at zero.
func (c Capacity) Sub(o Capacity) Capacity {
	sub := func(a, b uint64) uint64 {
		if b > a {
			return 0
		}
		return a - b
	}
	return Capacity{sub(c.CRU, o.CRU), sub(c.MRU, o.MRU), sub(c.SRU, o.SRU), sub(c.HRU, o.HRU), sub(c.IPV4U, o.IPV4U)}
}

// Max returns the field-wise maximum of c and o.
func (c Capacity) Max(o Capacity) Capacity {
	m := func(a, b uint64) uint64 {
		if a > b {
			return a
		}
		return b
	}
	return Capacity{m(c.CRU, o.CRU), m(c.MRU, o.MRU), m(c.SRU, o.SRU), m(c.HRU, o.HRU), m(c.IPV4U, o.IPV4U)}
}

// Fits reports whether o fits in c, field by field.
func (c Capacity) Fits(o Capacity) bool {
	return o.CRU <= c.CRU && o.MRU <= c.MRU && o.SRU <= c.SRU && o.HRU <= c.HRU && o.IPV4U <= c.IPV4U
}

// IsZero reports whether every field is zero.
func (c Capacity) IsZero() bool { return c == Capacity{} }
