package store

import (
	"errors"
	"fmt"
	"syscall"
)

// Space is the data directory's free space and the reserve writes keep.
type Space struct {
	Free    int64 // bytes available to this process
	Reserve int64 // Options.MinFree: below it, Update refuses (-1: no check)
}

// Low reports whether the free space is below the reserve: peers'
// messages are refused (the user's own essential writes still work).
func (sp Space) Low() bool { return sp.Reserve >= 0 && sp.Free < sp.Reserve }

// Space reads the data directory's free space now (one statfs).
func (s *Store) Space() (Space, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Space{}, ErrClosed
	}
	free, err := freeBytes(s.dir)
	if err != nil {
		return Space{}, fmt.Errorf("store: free space of the data directory: %w", err)
	}
	return Space{Free: free, Reserve: s.minFree}, nil
}

// freeBytes is the space available to this process on dir's file system.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Writable says whether the store takes writes now, without writing: it
// is open (and did not fail to reopen), its directory is there, and the
// last durable sync succeeded.
// A probe that wrote would wear the disk and grow the log on every call.
// The free-space reserve is Space's business.
func (s *Store) Writable() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || s.db.IsClosed() {
		return ErrClosed
	}
	if s.broken != nil {
		return s.broken
	}
	if s.dir != "" {
		if _, err := freeBytes(s.dir); err != nil {
			return fmt.Errorf("store: data directory: %w", err)
		}
	}
	s.smu.Lock()
	err := s.syncErr
	s.smu.Unlock()
	if err != nil {
		return errors.Join(errors.New("store: the last sync failed"), err)
	}
	return nil
}
