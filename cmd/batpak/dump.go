package main

import (
	"bufio"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) dumpCmd() *cobra.Command {
	var from uint64
	cmd := &cobra.Command{
		Use:   "dump DIR",
		Short: "Print every event as one JSON object per line",
		Long: `dump opens the store read-only and prints every event from --from on, in
commit order, as one JSON object per line with the fields sequence, id,
correlation, causation (null for a root event), entity, scope, version,
kind ("1:002"), type (the kind's name in the store's catalog, "" if it
has none), timestamp (RFC 3339, UTC, microseconds), metadata, payload
(decoded from msgpack; {"undecodable_msgpack": hex, "error": ...} when it
does not decode; null for an erased event, which also has "erased": true),
prev_hash and hash (hex).

Exit codes: 0 every event was printed; 1 the store does not open, an event
does not read (damage: the events before it were printed), or the operation
failed; 2 usage error.`,
		Example: `  batpak dump ./data | jq 'select(.entity == "account:42")'`,
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			s, err := openReadOnly(args[0])
			if err != nil {
				return err
			}
			defer func() { _ = s.Close() }()
			out := bufio.NewWriter(a.stdout)
			enc := json.NewEncoder(out)
			enc.SetEscapeHTML(false)
			for rec, err := range s.ReadAll(cmd.Context(), from) {
				if err != nil {
					_ = out.Flush()
					return damageAdvice(args[0], fmt.Errorf("read event: %w", err))
				}
				if err := enc.Encode(newEventJSON(&rec)); err != nil {
					return err
				}
			}
			return out.Flush()
		}),
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "start at this global sequence")
	return cmd
}
