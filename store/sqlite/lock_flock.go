//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/agentstate/agentstate/store"
)

// lockDir takes an exclusive, non-blocking flock on dir's lock file, so that
// a second process (or a second Open in this one) cannot run its own writer
// on the same database: the writer's in-memory revision counter and row cache
// rely on being the only writer. The kernel releases the lock if the process
// dies.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("store/sqlite: %s is locked by another open store: %w", path, store.ErrUnavailable)
		}
		return nil, fmt.Errorf("store/sqlite: lock %s: %w", path, err)
	}
	return f, nil
}

func unlockDir(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close() // closing the descriptor releases the flock
}
