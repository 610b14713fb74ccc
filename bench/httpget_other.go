//go:build !unix

package main

import (
	"errors"
	"time"
)

// processCPU needs getrusage.
func processCPU() (time.Duration, error) {
	return 0, errors.New("the http get section needs getrusage (a Unix system)")
}
