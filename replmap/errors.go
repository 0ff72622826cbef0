package replmap

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound is returned by Get for a key the replica does not hold.
	ErrNotFound = errors.New("replmap: key not found")
	// ErrNotReady is returned by Get before the replica has loaded its first snapshot.
	ErrNotReady = errors.New("replmap: replica not ready")
	// ErrStale is returned by Get when Config.MaxStaleness is set and the replica could not
	// confirm for longer than that that it is current.
	ErrStale = errors.New("replmap: replica too stale")
	// ErrConflict is the error a *ConflictError matches with errors.Is.
	ErrConflict = errors.New("replmap: version conflict")
	// ErrInvalid is returned for a write that cannot be made: an empty, duplicate or oversized
	// key, an oversized value, an empty batch.
	ErrInvalid = errors.New("replmap: invalid write")
	// ErrWriteLost is returned, with its seq, by a write that Redis applied and acknowledged and
	// then lost: a failover to a replica that had not received it (asynchronous replication),
	// which then gave that seq to another write or has not reached it, or a loss of the map's
	// whole history (a new epoch). Nothing of the write remains; write again if it still
	// matters.
	ErrWriteLost = errors.New("replmap: write lost by a failover after it was acknowledged")
	// ErrClosed is returned by calls on a closed Map.
	ErrClosed = errors.New("replmap: map closed")
)

// ConflictError reports a guarded write whose key was not at the expected version; nothing
// of the write was applied.
type ConflictError struct {
	Key            string
	Expected       uint64 // the version the write required (0: absent), unless ExpectedExists
	ExpectedExists bool   // the write required the key to exist (Op.MustExist)
	Actual         uint64 // the key's version in Redis (0: absent)
}

func (e *ConflictError) Error() string {
	if e.ExpectedExists {
		return fmt.Sprintf("replmap: version conflict on key %q: expected it to exist, it is absent", e.Key)
	}
	return fmt.Sprintf("replmap: version conflict on key %q: expected version %d, found %d", e.Key, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// DecodeError reports a value in Redis that the codec cannot decode (written by another
// client, say). The replica keeps the key's version, so digests still agree.
type DecodeError struct {
	Key     string
	Version uint64
	Err     error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("replmap: value of key %q (version %d) does not decode: %v", e.Key, e.Version, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }
