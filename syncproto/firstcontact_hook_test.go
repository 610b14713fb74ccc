package syncproto

import "github.com/goatdb/goatdb/syncproto/riblt"

// SetSketchBudget makes the Syncer's decoders accept at most n symbols,
// for tests of the fallback, and returns a function that restores the
// default.
func SetSketchBudget(n int) (restore func()) {
	old := sketchDecoderOptions
	sketchDecoderOptions = &riblt.DecoderOptions{MaxSymbols: n}
	return func() { sketchDecoderOptions = old }
}
