package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/node"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the nodes of the registry: their maps' seqs, lag and digest agreement",
		Long: `Print the live nodes that "redisync serve" recorded in Redis under --namespace: for each its
address, version, uptime and last heartbeat; for each map the seq every replica has applied,
how far it lags behind Redis, its keys and digest, and whether the replicas agree ("in sync":
equal digests at equal seqs, all caught up; "catching up"; "loading"; "diverged"); for each
relayed channel its head seq. A node that died disappears once its record expires.

With --json it prints {"nodes":[…],"maps":[…]}, the nodes as in GET /v1/nodes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			rc, _, closeAll, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeAll()
			recs, err := node.ListNodes(ctx, rc, g.prefix)
			if err != nil {
				return g.explain(err)
			}
			agree := node.Agreement(recs)
			out := cmd.OutOrStdout()
			if asJSON {
				b, err := json.Marshal(struct {
					Nodes []node.Record       `json:"nodes"`
					Maps  []node.MapAgreement `json:"maps"`
				}{recs, agree})
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "%s\n", b)
				return err
			}
			if len(recs) == 0 {
				_, err := fmt.Fprintf(out, "no node is registered under namespace %q (is redisync serve running with this --namespace?)\n", g.prefix)
				return err
			}
			return printStatus(out, recs, agree, time.Now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"nodes":[…],"maps":[…]} as one line of JSON`)
	return cmd
}

// printStatus prints the registry as three tables: nodes, maps, channels.
func printStatus(out io.Writer, recs []node.Record, agree []node.MapAgreement, now time.Time) error {
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tVERSION\tUP\tHEARTBEAT\tREDIS RTT\tDELIVERED/S")
	for _, r := range recs {
		rtt := "down"
		if r.RedisUp {
			rtt = fmt.Sprintf("%.2fms", r.RedisRTTSeconds*1000)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\t%.1f\n", r.ID, dash(r.Addr), r.Version,
			now.Sub(r.Started).Round(time.Second), now.Sub(r.Heartbeat).Round(100*time.Millisecond), rtt, r.DeliveredPerSecond)
	}
	if len(agree) > 0 {
		fmt.Fprintln(tw, "\nMAP\tSTATE\tNODE\tSEQ\tLAG\tLAG(S)\tKEYS\tDIGEST\tREDIS\tWRITES/S")
		for _, a := range agree {
			first := true
			for _, r := range recs {
				for _, m := range r.Maps {
					if m.Name != a.Map {
						continue
					}
					name, state := "", ""
					if first {
						name, state, first = a.Map, a.State, false
					}
					check := "-"
					if m.RedisMatch != nil {
						check = map[bool]string{true: "ok", false: "DIFFERS"}[*m.RedisMatch]
					}
					if !m.Ready {
						check = "loading"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.3f\t%d\t%s\t%s\t%.1f\n", name, state, r.ID, m.Seq, m.Lag, m.LagSeconds, m.Keys, m.Digest, check, m.WritesPerSecond)
				}
			}
		}
	}
	var chans []string
	for _, r := range recs {
		for _, c := range r.Channels {
			chans = append(chans, fmt.Sprintf("%s\t%s\t%d\t%.1f\n", c.Name, r.ID, c.Seq, c.MessagesPerSecond))
		}
	}
	if len(chans) > 0 {
		fmt.Fprintln(tw, "\nCHANNEL\tNODE\tSEQ\tMESSAGES/S")
		fmt.Fprint(tw, strings.Join(chans, ""))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range agree {
		if a.State != node.StateInSync {
			fmt.Fprintf(out, "\nmap %s: %s: %s\n", a.Map, a.State, a.Detail)
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
