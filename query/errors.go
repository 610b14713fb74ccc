package query

import "errors"

var (
	// ErrClosed is returned when a query is used after Close, or when its
	// source (its repository, or the query it is chained to) is closed.
	ErrClosed = errors.New("query: closed")

	// ErrCallback is returned (wrapped, with the panic's value) when a
	// query's Where or Less function panics. The update that met it
	// changes nothing visible; the query rescans on its next update.
	ErrCallback = errors.New("query: callback panicked")

	// ErrNotPersistent is returned by Save for a query without a state
	// file, or whose source cannot say where its log is.
	ErrNotPersistent = errors.New("query: not persistent")
)
