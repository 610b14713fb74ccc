package server

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// DefaultMaxConnections is how many connections a server keeps open at
// once (Options.MaxConnections).
const DefaultMaxConnections = 4096

// limitListener accepts a connection only while fewer than its cap are
// open; past that, new connections wait in the kernel's backlog until one
// closes, so no number of clients can make the server hold more file
// descriptors and goroutines than the cap. Accept returns once the
// listener is closed, even while it waits for a slot. Connections are
// returned as they are (a *tls.Conn stays one, for HTTP/2); the
// http.Server's ConnState hook (connState) gives a slot back when one
// closes.
type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
	open  *atomic.Int64
	full  func() // called each time Accept finds every slot taken
}

func newLimitListener(ln net.Listener, max int, open *atomic.Int64, full func()) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), done: make(chan struct{}), open: open, full: full}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.full()
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.open.Add(1)
	return c, nil
}

// connState gives a closed (or hijacked) connection's slot back.
func (l *limitListener) connState(_ net.Conn, st http.ConnState) {
	if st == http.StateClosed || st == http.StateHijacked {
		l.open.Add(-1)
		<-l.slots
	}
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}
