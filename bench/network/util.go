package main

import (
	"context"
	"net/netip"
)

type netipPrefix = netip.Prefix

func contextTODO() context.Context { return context.Background() }

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
