package natsstore

// Stats counts what this client's appends went through.
type Stats struct {
	// Events is the number of events this client has indexed.
	Events uint64
	// Skipped counts the messages of the stream that the index skipped
	// because they are not batpak events (published by something else on
	// the store's subjects, or breaking their stream's versions, hash
	// chain or request); each is logged with its sequence, subject and
	// reason. See the package documentation, "Messages that are not
	// events".
	Skipped uint64
	// Retries counts publishes sent again after a timeout, a lost
	// connection or a leader election.
	Retries uint64
	// Recovered counts appends found committed after such a failure
	// (through the index or the server's duplicate detection) instead of
	// being written twice.
	Recovered uint64
	// ServerConflicts counts publishes the server refused because the
	// stream had moved on since this client's index saw it (appends of
	// other clients); each was checked again against the caught-up index.
	ServerConflicts uint64
	// InProcess counts publishes the server answered with "duplicate
	// message id is in process" (JetStream error 10158): a publish with the
	// same Nats-Msg-Id (an earlier attempt of the append, or another
	// client's append with the same idempotency key) was being replicated.
	// Each such append waited for that publish's outcome.
	InProcess uint64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	skipped := s.ix.skippedCount()
	return Stats{
		Events:          s.LastSequence() - skipped,
		Skipped:         skipped,
		Retries:         s.stats.retries.Load(),
		Recovered:       s.stats.recovered.Load(),
		ServerConflicts: s.stats.serverConflicts.Load(),
		InProcess:       s.stats.inProcess.Load(),
	}
}
