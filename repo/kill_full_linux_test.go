//go:build linux

package repo_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/repo"
)

const fullEnv = "GOATDB_TEST_FULL_DIR" // the child's data directory

// Steps of the full-disk child: the disk fills up before step fillAt and
// has room again from step roomAt on.
const (
	fillAt = 40
	roomAt = 120
)

// TestKillFullChild is the child process of TestKillFull: it writes with
// Sync durability, and from step fillAt the file may grow only a few
// hundred bytes more (RLIMIT_FSIZE: a write past it stops short and fails,
// as on a full disk) until step roomAt. It prints "ack STEP KEY VALUE"
// after a write returns and "fail STEP KEY VALUE" after one fails.
func TestKillFullChild(t *testing.T) {
	dir := os.Getenv(fullEnv)
	if dir == "" {
		t.Skip("child process of TestKillFull")
	}
	signal.Ignore(syscall.SIGXFSZ) // a write past the limit fails with EFBIG instead
	path := filepath.Join(dir, "full.log")
	r, err := repo.Open(path, &repo.Options{Key: crashKey(t), Durability: repo.Sync})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var room syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &room); err != nil {
		os.Exit(2)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		switch i {
		case fillAt:
			// The file may reach into space reserved past the log: the
			// limit is on offsets written, and so on the log's length.
			full := syscall.Rlimit{Cur: uint64(r.LogSize()) + 300, Max: room.Max}
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
				os.Exit(2)
			}
		case roomAt:
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &room); err != nil {
				os.Exit(2)
			}
		}
		keys, v := killStep(i)
		var step crashStep
		for _, k := range keys {
			step = append(step, crashStr(k, v))
		}
		word := "ack"
		if _, err := r.Write(crashUpdates(step)...); err != nil {
			word = "fail"
		}
		var lines strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&lines, "%s %d %s %s\n", word, i, k, v)
		}
		if _, err := io.WriteString(os.Stdout, lines.String()); err != nil {
			os.Exit(3)
		}
	}
	os.Exit(4)
}

// TestKillFull kills a writer with SIGKILL while its disk is full, and
// after the disk had room again: every acknowledged write survives, and no
// write that reported failure ever appears.
func TestKillFull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped with -short")
	}
	for _, stopAt := range []int{fillAt + 30, roomAt + 30} {
		t.Run(fmt.Sprintf("at=%d", stopAt), func(t *testing.T) {
			dir := t.TempDir()
			cmd, out, stderr := startChild(t, "TestKillFullChild", fullEnv+"="+dir)
			last := map[string]int{} // key → last acknowledged step
			failed := map[int]bool{}
			fails, maxStep := 0, -1
			br := bufio.NewReader(out)
			record := func(line string) {
				f := strings.Fields(line)
				if len(f) != 4 {
					return
				}
				i, _ := strconv.Atoi(f[1])
				maxStep = max(maxStep, i)
				if f[0] == "fail" {
					failed[i] = true
					fails++
				} else {
					last[f[2]] = i
				}
			}
			for maxStep < stopAt {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("child stopped: %v\n%s", err, stderr.String())
				}
				record(line)
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					break
				}
				record(line)
			}
			werr := cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die of SIGKILL: %v\n%s", werr, stderr.String())
			}
			if fails == 0 {
				t.Fatalf("no write failed on the full disk")
			}
			t.Logf("killed at step %d: %d writes acknowledged keys, %d failed", maxStep, len(last), fails)

			r := dbtest.OpenRepo(t, filepath.Join(dir, "full.log"), &repo.Options{Key: crashKey(t)})
			dbtest.RequireClean(t, r)
			for _, k := range r.Keys(true) {
				v, _, _ := r.Get(k)
				got, _ := v.Get("v")
				step, err := strconv.Atoi(got.Str())
				switch {
				case err != nil:
					t.Errorf("%s = %v", k, got)
				case failed[step]:
					t.Errorf("%s = %d: a write that reported failure reappeared", k, step)
				case step < last[k]:
					t.Errorf("%s = %d, but step %d was acknowledged", k, step, last[k])
				}
			}
			for k, want := range last {
				if _, _, ok := r.Get(k); !ok {
					t.Errorf("acknowledged %s = %d lost", k, want)
				}
			}
			// After the disk had room again, writes succeeded without a
			// restart.
			if stopAt > roomAt {
				if _, ok := last[fmt.Sprintf("k%02d", (roomAt+1)%37)]; !ok || last[fmt.Sprintf("k%02d", (roomAt+1)%37)] < roomAt {
					t.Errorf("no write acknowledged after the disk had room again")
				}
			}
		})
	}
}
