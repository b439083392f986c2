package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/berthsh/berth/pkg/errdefs"
)

// PortReservation holds a host port so that no other program can bind it
// while a container publishes it. Packets to the port are diverted to the
// container by DNAT before they reach the socket.
type PortReservation struct {
	Proto    string
	HostIP   netip.Addr // zero: every address
	HostPort uint16
	sock     io.Closer
	file     func() (*os.File, error)
}

// File returns a duplicate of the reserving socket, for handing to a
// process that keeps the reservation (the container's supervisor).
func (r *PortReservation) File() (*os.File, error) { return r.file() }

// Close releases the port.
func (r *PortReservation) Close() error { return r.sock.Close() }

// ReservePort binds proto ("tcp" or "udp") on hostIP:port (hostIP zero:
// every IPv4 address; port 0: a free port, reported in the result) and
// keeps the socket, listening for TCP. A port another program holds gives
// an error wrapping errdefs.ErrConflict that names it.
func ReservePort(ctx context.Context, proto string, hostIP netip.Addr, port uint16) (*PortReservation, error) {
	if hostIP.IsValid() && !hostIP.Is4() {
		return nil, fmt.Errorf("publish on %s: only IPv4 host addresses are supported: %w", hostIP, errdefs.ErrInvalidArgument)
	}
	ip := "0.0.0.0"
	if hostIP.IsValid() {
		ip = hostIP.String()
	}
	addr := net.JoinHostPort(ip, fmt.Sprint(port))
	var lc net.ListenConfig
	r := &PortReservation{Proto: proto, HostIP: hostIP}
	switch proto {
	case "tcp":
		ln, err := lc.Listen(ctx, "tcp4", addr)
		if err != nil {
			return nil, bindError(proto, addr, err)
		}
		tl := ln.(*net.TCPListener)
		r.sock, r.file = ln, tl.File
		r.HostPort = uint16(tl.Addr().(*net.TCPAddr).Port)
	case "udp":
		pc, err := lc.ListenPacket(ctx, "udp4", addr)
		if err != nil {
			return nil, bindError(proto, addr, err)
		}
		uc := pc.(*net.UDPConn)
		r.sock, r.file = pc, uc.File
		r.HostPort = uint16(uc.LocalAddr().(*net.UDPAddr).Port)
	default:
		return nil, fmt.Errorf("publish %s/%s: protocol must be tcp or udp: %w", addr, proto, errdefs.ErrInvalidArgument)
	}
	return r, nil
}

func bindError(proto, addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("bind for %s/%s failed: port is already allocated: %w", addr, proto, errdefs.ErrConflict)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("bind for %s/%s: %v: %w", addr, proto, err, errdefs.ErrPermission)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("bind for %s/%s: the address is not an address of this host: %w", addr, proto, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("bind for %s/%s: %w", addr, proto, err)
}
