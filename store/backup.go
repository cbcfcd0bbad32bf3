package store

import "io"

// Backup writes every live key of the store to w in badger's backup
// format. It reads at one timestamp, so the copy is consistent while
// writes go on (`swarm export` from a running daemon).
func (s *Store) Backup(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	_, err := s.db.Backup(w, 0)
	return err
}

// Load writes a Backup into the store (`swarm import`, on a new store),
// keeping each key's expiry.
func (s *Store) Load(r io.Reader) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.db.Load(r, 64); err != nil {
		return err
	}
	return s.db.Sync()
}
