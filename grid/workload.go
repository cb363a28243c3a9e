package grid

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
)

// WorkloadType names a kind of workload.
type WorkloadType string

// The workload types a deployment may hold.
const (
	TypeZMachine    WorkloadType = "zmachine" // a container (or VM) booted from an flist
	TypeVolume      WorkloadType = "volume"   // a persistent directory mounted into a zmachine
	TypeDisk        WorkloadType = "disk"     // a raw virtual disk (zmount)
	TypeNetwork     WorkloadType = "network"  // a private wireguard network
	TypeZDB         WorkloadType = "zdb"      // a zdb namespace
	TypeGatewayName WorkloadType = "gateway-name-proxy"
	TypeGatewayFQDN WorkloadType = "gateway-fqdn-proxy"
	TypePublicIP    WorkloadType = "ip"   // a public IPv4 and/or IPv6 address
	TypeLogs        WorkloadType = "logs" // stream a zmachine's logs somewhere
)

// WorkloadData is the typed payload of a workload. The set is closed: each
// type below implements it, and newWorkloadData maps a type name to it.
type WorkloadData interface {
	// Capacity is what the workload reserves on a node.
	Capacity() Capacity
	// Validate checks the data alone (no node or ledger state).
	Validate() error
	encode(e *encoder)
}

func newWorkloadData(t WorkloadType) (WorkloadData, error) {
	switch t {
	case TypeZMachine:
		return &ZMachine{}, nil
	case TypeVolume:
		return &Volume{}, nil
	case TypeDisk:
		return &Disk{}, nil
	case TypeNetwork:
		return &Network{}, nil
	case TypeZDB:
		return &ZDB{}, nil
	case TypeGatewayName:
		return &GatewayName{}, nil
	case TypeGatewayFQDN:
		return &GatewayFQDN{}, nil
	case TypePublicIP:
		return &PublicIP{}, nil
	case TypeLogs:
		return &Logs{}, nil
	}
	return nil, fmt.Errorf("%w: unknown workload type %q", ErrInvalid, t)
}

// Mount attaches a volume or disk workload of the same deployment to a
// zmachine.
type Mount struct {
	Name       string `json:"name"`
	Mountpoint string `json:"mountpoint"`
}

// ZMachine runs an flist. FlistHash is the SHA-256 of the flist's metadata,
// so a signature over the deployment pins the exact bytes that will run.
type ZMachine struct {
	Flist      string            `json:"flist"`
	FlistHash  string            `json:"flist_hash"`
	Network    string            `json:"network,omitempty"`
	IP         string            `json:"ip,omitempty"`
	PublicIP   string            `json:"public_ip,omitempty"`
	CPU        uint64            `json:"cpu"`
	Memory     uint64            `json:"memory"`
	RootSize   uint64            `json:"root_size"`
	Entrypoint string            `json:"entrypoint,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Mounts     []Mount           `json:"mounts,omitempty"`
}

// Capacity implements WorkloadData.
func (z *ZMachine) Capacity() Capacity { return Capacity{CRU: z.CPU, MRU: z.Memory, SRU: z.RootSize} }

// Validate implements WorkloadData.
func (z *ZMachine) Validate() error {
	if z.Flist == "" {
		return fmt.Errorf("%w: zmachine: flist is required", ErrInvalid)
	}
	if b, err := hex.DecodeString(z.FlistHash); err != nil || len(b) != 32 {
		return fmt.Errorf("%w: zmachine: flist_hash must be the flist's SHA-256 (64 hex digits)", ErrInvalid)
	}
	if z.CPU == 0 || z.Memory == 0 {
		return fmt.Errorf("%w: zmachine: cpu and memory must be positive", ErrInvalid)
	}
	if z.Network != "" {
		if err := ValidateName(z.Network); err != nil {
			return fmt.Errorf("zmachine network: %w", err)
		}
	}
	if z.IP != "" {
		if _, err := netip.ParseAddr(z.IP); err != nil {
			return fmt.Errorf("%w: zmachine: ip: %v", ErrInvalid, err)
		}
	}
	for _, m := range z.Mounts {
		if err := ValidateName(m.Name); err != nil {
			return fmt.Errorf("zmachine mount: %w", err)
		}
		if len(m.Mountpoint) == 0 || m.Mountpoint[0] != '/' {
			return fmt.Errorf("%w: zmachine: mountpoint %q must be absolute", ErrInvalid, m.Mountpoint)
		}
	}
	return nil
}

func (z *ZMachine) encode(e *encoder) {
	e.str(z.Flist)
	e.str(z.FlistHash)
	e.str(z.Network)
	e.str(z.IP)
	e.str(z.PublicIP)
	e.u64(z.CPU)
	e.u64(z.Memory)
	e.u64(z.RootSize)
	e.str(z.Entrypoint)
	e.strMap(z.Env)
	e.u64(uint64(len(z.Mounts)))
	for _, m := range z.Mounts {
		e.str(m.Name)
		e.str(m.Mountpoint)
	}
}

// Volume is a persistent directory of Size bytes on SSD.
type Volume struct {
	Size uint64 `json:"size"`
}

// Capacity implements WorkloadData.
func (v *Volume) Capacity() Capacity { return Capacity{SRU: v.Size} }

// Validate implements WorkloadData.
func (v *Volume) Validate() error {
	if v.Size == 0 {
		return fmt.Errorf("%w: volume: size must be positive", ErrInvalid)
	}
	return nil
}

func (v *Volume) encode(e *encoder) { e.u64(v.Size) }

// Disk is a raw virtual disk of Size bytes on SSD.
type Disk struct {
	Size uint64 `json:"size"`
}

// Capacity implements WorkloadData.
func (d *Disk) Capacity() Capacity { return Capacity{SRU: d.Size} }

// Validate implements WorkloadData.
func (d *Disk) Validate() error {
	if d.Size == 0 {
		return fmt.Errorf("%w: disk: size must be positive", ErrInvalid)
	}
	return nil
}

func (d *Disk) encode(e *encoder) { e.u64(d.Size) }

// Peer is a wireguard peer of a private network.
type Peer struct {
	Subnet     string   `json:"subnet"`
	PublicKey  string   `json:"public_key"`
	AllowedIPs []string `json:"allowed_ips"`
	Endpoint   string   `json:"endpoint,omitempty"`
}

// Network is this node's part of a private network.
type Network struct {
	IPRange    string `json:"ip_range"`
	Subnet     string `json:"subnet"`
	PrivateKey string `json:"private_key"` // wireguard key, expected encrypted to the node
	ListenPort uint64 `json:"listen_port"`
	Peers      []Peer `json:"peers,omitempty"`
}

// Capacity implements WorkloadData.
func (n *Network) Capacity() Capacity { return Capacity{} }

// Validate implements WorkloadData.
func (n *Network) Validate() error {
	r, err := netip.ParsePrefix(n.IPRange)
	if err != nil {
		return fmt.Errorf("%w: network: ip_range: %v", ErrInvalid, err)
	}
	s, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return fmt.Errorf("%w: network: subnet: %v", ErrInvalid, err)
	}
	if !r.Contains(s.Addr()) || s.Bits() < r.Bits() {
		return fmt.Errorf("%w: network: subnet %s is not inside %s", ErrInvalid, s, r)
	}
	if n.ListenPort > 65535 {
		return fmt.Errorf("%w: network: listen_port %d", ErrInvalid, n.ListenPort)
	}
	return nil
}

func (n *Network) encode(e *encoder) {
	e.str(n.IPRange)
	e.str(n.Subnet)
	e.str(n.PrivateKey)
	e.u64(n.ListenPort)
	e.u64(uint64(len(n.Peers)))
	for _, p := range n.Peers {
		e.str(p.Subnet)
		e.str(p.PublicKey)
		e.strs(p.AllowedIPs)
		e.str(p.Endpoint)
	}
}

// ZDB is a zdb namespace of Size bytes, on HDD unless SSD is asked for.
type ZDB struct {
	Size     uint64 `json:"size"`
	Mode     string `json:"mode"` // "user" or "seq"
	Password string `json:"password,omitempty"`
	Public   bool   `json:"public,omitempty"`
	SSD      bool   `json:"ssd,omitempty"`
}

// Capacity implements WorkloadData.
func (z *ZDB) Capacity() Capacity {
	if z.SSD {
		return Capacity{SRU: z.Size}
	}
	return Capacity{HRU: z.Size}
}

// Validate implements WorkloadData.
func (z *ZDB) Validate() error {
	if z.Size == 0 {
		return fmt.Errorf("%w: zdb: size must be positive", ErrInvalid)
	}
	if z.Mode != "user" && z.Mode != "seq" {
		return fmt.Errorf("%w: zdb: mode %q is not user or seq", ErrInvalid, z.Mode)
	}
	return nil
}

func (z *ZDB) encode(e *encoder) {
	e.u64(z.Size)
	e.str(z.Mode)
	e.str(z.Password)
	e.boolean(z.Public)
	e.boolean(z.SSD)
}

// GatewayName exposes backends under <name>.<gateway domain>; the name is
// reserved by a name contract on the ledger.
type GatewayName struct {
	Name           string   `json:"name"`
	Backends       []string `json:"backends"`
	TLSPassthrough bool     `json:"tls_passthrough,omitempty"`
}

// Capacity implements WorkloadData.
func (g *GatewayName) Capacity() Capacity { return Capacity{} }

// Validate implements WorkloadData.
func (g *GatewayName) Validate() error {
	if err := ValidateName(g.Name); err != nil {
		return fmt.Errorf("gateway name: %w", err)
	}
	return validateBackends(g.Backends)
}

func (g *GatewayName) encode(e *encoder) {
	e.str(g.Name)
	e.strs(g.Backends)
	e.boolean(g.TLSPassthrough)
}

// GatewayFQDN exposes backends under a domain the user controls.
type GatewayFQDN struct {
	FQDN           string   `json:"fqdn"`
	Backends       []string `json:"backends"`
	TLSPassthrough bool     `json:"tls_passthrough,omitempty"`
}

// Capacity implements WorkloadData.
func (g *GatewayFQDN) Capacity() Capacity { return Capacity{} }

// Validate implements WorkloadData.
func (g *GatewayFQDN) Validate() error {
	if len(g.FQDN) == 0 || len(g.FQDN) > 253 {
		return fmt.Errorf("%w: gateway fqdn: %q", ErrInvalid, g.FQDN)
	}
	return validateBackends(g.Backends)
}

func (g *GatewayFQDN) encode(e *encoder) {
	e.str(g.FQDN)
	e.strs(g.Backends)
	e.boolean(g.TLSPassthrough)
}

func validateBackends(bs []string) error {
	if len(bs) == 0 {
		return fmt.Errorf("%w: gateway: at least one backend is required", ErrInvalid)
	}
	for _, b := range bs {
		if _, err := netip.ParseAddrPort(b); err != nil {
			return fmt.Errorf("%w: gateway backend %q: want ip:port", ErrInvalid, b)
		}
	}
	return nil
}

// PublicIP asks for a public IPv4 (from the farm, through the contract)
// and/or an IPv6 address.
type PublicIP struct {
	V4 bool `json:"v4"`
	V6 bool `json:"v6"`
}

// Capacity implements WorkloadData.
func (p *PublicIP) Capacity() Capacity {
	if p.V4 {
		return Capacity{IPV4U: 1}
	}
	return Capacity{}
}

// Validate implements WorkloadData.
func (p *PublicIP) Validate() error {
	if !p.V4 && !p.V6 {
		return fmt.Errorf("%w: ip: ask for v4, v6 or both", ErrInvalid)
	}
	return nil
}

func (p *PublicIP) encode(e *encoder) {
	e.boolean(p.V4)
	e.boolean(p.V6)
}

// Logs streams the output of a zmachine of the same deployment.
type Logs struct {
	ZMachine string `json:"zmachine"`
	Output   string `json:"output"` // e.g. redis://host:port/channel
}

// Capacity implements WorkloadData.
func (l *Logs) Capacity() Capacity { return Capacity{} }

// Validate implements WorkloadData.
func (l *Logs) Validate() error {
	if err := ValidateName(l.ZMachine); err != nil {
		return fmt.Errorf("logs zmachine: %w", err)
	}
	if l.Output == "" {
		return fmt.Errorf("%w: logs: output is required", ErrInvalid)
	}
	return nil
}

func (l *Logs) encode(e *encoder) {
	e.str(l.ZMachine)
	e.str(l.Output)
}

// workloadJSON is the wire form of a Workload.
type workloadJSON struct {
	Version     uint32          `json:"version"`
	Name        string          `json:"name"`
	Type        WorkloadType    `json:"type"`
	Data        json.RawMessage `json:"data"`
	Metadata    string          `json:"metadata,omitempty"`
	Description string          `json:"description,omitempty"`
	Result      *Result         `json:"result,omitempty"`
}

// UnmarshalJSON decodes the data into the type named by "type".
func (w *Workload) UnmarshalJSON(b []byte) error {
	var j workloadJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	data, err := newWorkloadData(j.Type)
	if err != nil {
		return err
	}
	if len(j.Data) == 0 || string(j.Data) == "null" {
		return fmt.Errorf("%w: workload %q has no data", ErrInvalid, j.Name)
	}
	if err := json.Unmarshal(j.Data, data); err != nil {
		return fmt.Errorf("%w: workload %q data: %v", ErrInvalid, j.Name, err)
	}
	*w = Workload{Version: j.Version, Name: j.Name, Type: j.Type, Data: data,
		Metadata: j.Metadata, Description: j.Description, Result: j.Result}
	return nil
}

// MarshalJSON writes the wire form.
func (w Workload) MarshalJSON() ([]byte, error) {
	data, err := json.Marshal(w.Data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(workloadJSON{Version: w.Version, Name: w.Name, Type: w.Type, Data: data,
		Metadata: w.Metadata, Description: w.Description, Result: w.Result})
}
