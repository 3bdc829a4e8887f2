package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mandate-iam/mandate/graph"
)

// listen keeps one connection that LISTENs for commit notifications and
// wakes WaitForCommits callers with each notified revision. Notifications
// only wake the change log followers, which then read the change log. A
// notification lost while the connection is down delays a follower by at
// most the poll interval, and every reconnect wakes the followers.
func (s *Store) listen() {
	defer s.wg.Done()
	failures := 0
	for s.ctx.Err() == nil {
		err := s.listenOnce(&failures)
		if s.ctx.Err() != nil {
			return
		}
		failures++
		// Log the first failure and then every hundredth, so that a
		// database outage does not flood the log.
		if failures == 1 || failures%100 == 0 {
			s.log.Warn().Err(err).Int("failures", failures).
				Msg("commit notification connection lost; polling the change log until it reconnects")
		}
		t := time.NewTimer(min(time.Duration(failures)*100*time.Millisecond, 2*time.Second))
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
		}
	}
}

// listenOnce connects, listens and delivers notifications until the
// connection fails. It resets failures once it listens.
func (s *Store) listenOnce(failures *int) error {
	conn, err := pgx.ConnectConfig(s.ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(s.ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen on %s: %w", notifyChannel, err)
	}
	if *failures > 0 {
		s.log.Info().Int("failures", *failures).Msg("commit notification connection restored")
		*failures = 0
	}
	// Commits made while no connection listened were not notified.
	s.wakeAll()
	for {
		n, err := conn.WaitForNotification(s.ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		rev, err := strconv.ParseUint(n.Payload, 10, 64)
		if err != nil {
			s.log.Warn().Str("payload", n.Payload).Msg("ignored a commit notification that is not a revision")
			continue
		}
		s.observe(graph.Revision(rev))
	}
}

// wakeAll wakes every WaitForCommits caller without recording a revision.
func (s *Store) wakeAll() {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	close(s.wake)
	s.wake = make(chan struct{})
}
