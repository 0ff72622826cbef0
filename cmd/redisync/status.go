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
	var goneAfter time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the nodes of the registry: their maps' seqs, lag and digest agreement",
		Long: `Print the live nodes that "redisync serve" recorded in Redis under --namespace: for each its
address, version, uptime and last heartbeat; for each map the seq every replica has applied,
how far it lags behind Redis, its keys and digest, and whether the replicas agree ("in sync":
equal digests at equal seqs, all caught up; "catching up"; "loading"; "diverged"); for each
relayed channel its head seq.

The lag of a replica is how far the map's head in Redis, read now, is beyond the seq its node
last reported (so it also counts the writes since that node's heartbeat). A node is "live",
"late" once its last heartbeat is older than two of its periods (it, or its link to Redis, is
stuck), and "gone" once its record has expired without it leaving: it is listed so for
--gone-after. The last lines name every problem: late and gone nodes, maps not in sync
("diverged": replicas with other digests at the same seq, or another digest than Redis's).

With --json it prints {"nodes":[…],"maps":[…],"gone":[…],"health":{…}}, as GET /v1/nodes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt := node.ReadOptions{GoneAfter: goneAfter}
			switch {
			case goneAfter < 0 || goneAfter > node.MaxGoneAfter:
				return fmt.Errorf("--gone-after %v: want from 0 to %s", goneAfter, shortDuration(node.MaxGoneAfter))
			case goneAfter == 0:
				opt.GoneAfter = -1 // none
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			rc, _, closeAll, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeAll()
			reg, err := node.ReadRegistry(ctx, rc, g.prefix, opt)
			if err != nil {
				return g.explain(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				b, err := json.Marshal(reg)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "%s\n", b)
				return err
			}
			if len(reg.Nodes) == 0 {
				_, err := fmt.Fprintf(out, "no node is registered under namespace %q (is redisync serve running with this --namespace?)\n", g.prefix)
				if err != nil || len(reg.Gone) == 0 {
					return err
				}
			}
			return printStatus(out, reg)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"nodes":[…],"maps":[…],"gone":[…],"health":{…}} as one line of JSON`)
	cmd.Flags().DurationVar(&goneAfter, "gone-after", node.DefaultGoneAfter,
		"how long a node whose record expired without it leaving is still listed, as gone (at most "+shortDuration(node.MaxGoneAfter)+"; 0: never)")
	return cmd
}

// shortDuration formats d without its zero minutes and seconds: "24h", "5m".
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

// printStatus prints the registry as three tables (nodes, the gone ones among them; maps;
// channels), then a line for each problem.
func printStatus(out io.Writer, reg node.Registry) error {
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	now := time.Now()
	if len(reg.Nodes)+len(reg.Gone) > 0 {
		fmt.Fprintln(tw, "NODE\tADDRESS\tVERSION\tUP\tHEARTBEAT\tREDIS RTT\tDELIVERED/S\tSTATE")
	}
	for _, r := range reg.Nodes {
		rtt := "down"
		if r.RedisUp {
			rtt = fmt.Sprintf("%.2fms", r.RedisRTTSeconds*1000)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\t%.1f\t%s\n", r.ID, dash(r.Addr), r.Version,
			now.Sub(r.Started).Round(time.Second), ago(r.HeartbeatAgeSeconds), rtt, r.DeliveredPerSecond, r.State)
	}
	for _, g := range reg.Gone {
		fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t%s (record expired %s ago)\n", g.ID, g.State, ago(g.GoneSeconds))
	}
	if len(reg.Maps) > 0 {
		fmt.Fprintln(tw, "\nMAP\tSTATE\tNODE\tSEQ\tLAG\tLAG(S)\tKEYS\tDIGEST\tREDIS\tWRITES/S")
		for _, a := range reg.Maps {
			first := true
			for _, r := range reg.Nodes {
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
					if m.Diverged && check != "DIFFERS" {
						check = "DIVERGED" // from another replica at the same seq, or Redis now
					}
					if !m.Ready {
						check = "loading"
					}
					who := r.ID
					if r.State != node.NodeLive {
						who += " (" + r.State + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.3f\t%d\t%s\t%s\t%.1f\n", name, state, who, m.Seq, m.LagNow, m.LagSecondsNow, m.Keys, m.Digest, check, m.WritesPerSecond)
				}
			}
		}
	}
	var chans []string
	for _, r := range reg.Nodes {
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
	for _, r := range reg.Nodes {
		if r.State == node.NodeLate {
			every := ""
			if r.HeartbeatMillis > 0 {
				every = fmt.Sprintf(" (it beats every %v)", time.Duration(r.HeartbeatMillis)*time.Millisecond)
			}
			fmt.Fprintf(out, "\nnode %s: %s: last heartbeat %s ago%s\n", r.ID, r.State, ago(r.HeartbeatAgeSeconds), every)
		}
	}
	for _, g := range reg.Gone {
		fmt.Fprintf(out, "\nnode %s: %s: its record expired %s ago without it leaving\n", g.ID, g.State, ago(g.GoneSeconds))
	}
	for _, a := range reg.Maps {
		if a.State != node.StateInSync {
			fmt.Fprintf(out, "\nmap %s: %s: %s\n", a.Map, a.State, a.Detail)
		}
	}
	_, err := fmt.Fprintf(out, "\nhealth: %s: %s\n", reg.Health.Level, reg.Health.Summary)
	return err
}

// ago is s seconds rounded as the HEARTBEAT column shows them: "300ms", "2m5s".
func ago(s float64) time.Duration {
	d := time.Duration(s * float64(time.Second))
	if d < time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
