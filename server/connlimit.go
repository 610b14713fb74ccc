package server

import (
	"net"
	"sync"
	"sync/atomic"
)

// DefaultMaxConnections is how many connections a server keeps open at
// once (Options.MaxConnections).
const DefaultMaxConnections = 4096

// limitListener accepts a connection only while fewer than cap are open;
// past that, new connections wait in the kernel's backlog until one
// closes, so no number of clients can make the server hold more file
// descriptors and goroutines than the cap. Accept returns once the
// listener is closed, even while it waits for a slot.
type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
	open  *atomic.Int64
}

func newLimitListener(ln net.Listener, max int, open *atomic.Int64) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), done: make(chan struct{}), open: open}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.open.Add(1)
	return &limitConn{Conn: c, l: l}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back when it is closed (once).
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		<-c.l.slots
	})
	return err
}
