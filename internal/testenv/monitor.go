package testenv

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// slotWatch follows MONITOR on every master of a cluster and checks that
// each script execution touched keys of one hash slot only. Redis itself
// refuses a script whose declared KEYS span slots (CROSSSLOT) or that
// reaches a key of another node, but a script without a shebang may touch
// an undeclared key of another slot that happens to live on the same
// node: it works until a resharding moves one of the slots. This catches
// that too.
type slotWatch struct {
	conns []net.Conn
	wg    sync.WaitGroup

	mu         sync.Mutex
	executions int
	violations []string
}

func watchSlots(c *Cluster) (*slotWatch, error) {
	w := &slotWatch{}
	for _, n := range c.Nodes {
		if !n.running() {
			continue
		}
		info, err := nodeRole(n.Addr)
		if err != nil {
			w.stop()
			return nil, err
		}
		if info != "master" {
			continue
		}
		conn, err := net.DialTimeout("tcp", n.Addr, 5*time.Second)
		if err != nil {
			w.stop()
			return nil, err
		}
		rd := bufio.NewReaderSize(conn, 1<<16)
		if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
			w.stop()
			return nil, err
		}
		if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			w.stop()
			return nil, fmt.Errorf("MONITOR on %s: %q %v", n.Addr, line, err)
		}
		w.conns = append(w.conns, conn)
		w.wg.Add(1)
		go w.follow(rd)
	}
	return w, nil
}

func nodeRole(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("ROLE\r\n")); err != nil {
		return "", err
	}
	rd := bufio.NewReader(conn)
	// *N, then $len, then the role.
	for i := 0; i < 3; i++ {
		line, err := rd.ReadString('\n')
		if err != nil {
			return "", err
		}
		if i == 2 {
			return strings.TrimSpace(line), nil
		}
	}
	return "", nil
}

// follow reads one master's MONITOR stream: a script's own commands
// ("[0 lua]") come right after the EVAL/EVALSHA that ran it.
func (w *slotWatch) follow(rd *bufio.Reader) {
	defer w.wg.Done()
	var script string
	var slots map[int][]string
	flush := func() {
		if script == "" {
			return
		}
		w.mu.Lock()
		w.executions++
		if len(slots) > 1 {
			w.violations = append(w.violations, fmt.Sprintf("script %s touched %d slots: %v", script, len(slots), slots))
		}
		w.mu.Unlock()
		script, slots = "", nil
	}
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			flush()
			return
		}
		args, source := parseMonitorLine(line)
		if len(args) == 0 {
			continue
		}
		if source != "lua" {
			flush()
			name := strings.ToUpper(args[0])
			if (name == "EVALSHA" || name == "EVAL" || name == "EVALSHA_RO" || name == "EVAL_RO") && len(args) > 1 {
				script = args[1]
				if len(script) > 12 {
					script = script[:12]
				}
				slots = map[int][]string{}
			}
			continue
		}
		if script == "" {
			continue
		}
		for _, k := range commandKeys(args) {
			s := keySlot(k)
			if len(slots[s]) < 3 {
				slots[s] = append(slots[s], k)
			}
		}
	}
}

func (w *slotWatch) stop() {
	for _, c := range w.conns {
		_ = c.Close()
	}
	w.wg.Wait()
}

// parseMonitorLine splits `+1700000000.000000 [0 127.0.0.1:5000] "SET" "k"`
// into its arguments and the source ("lua" for a script's commands).
func parseMonitorLine(line string) (args []string, source string) {
	open := strings.IndexByte(line, '[')
	end := strings.IndexByte(line, ']')
	if open < 0 || end < open {
		return nil, ""
	}
	fields := strings.Fields(line[open+1 : end])
	if len(fields) == 2 {
		source = fields[1]
	}
	rest := line[end+1:]
	for {
		q := strings.IndexByte(rest, '"')
		if q < 0 {
			return args, source
		}
		rest = rest[q:]
		// The argument is a Go-like quoted string with \xNN escapes.
		i := 1
		for i < len(rest) && rest[i] != '"' {
			if rest[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(rest) {
			return args, source
		}
		args = append(args, unquoteMonitor(rest[1:i]))
		rest = rest[i+1:]
	}
}

func unquoteMonitor(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'x':
			if i+2 < len(s) {
				if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					continue
				}
			}
			b.WriteByte('x')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// commandKeys returns the keys a command names: every argument of the
// multi-key commands scripts use, the first argument of the others.
func commandKeys(args []string) []string {
	if len(args) < 2 {
		return nil
	}
	switch strings.ToUpper(args[0]) {
	case "DEL", "UNLINK", "EXISTS", "TOUCH", "MGET", "SINTER", "SUNION", "SDIFF":
		return args[1:]
	case "PING", "TIME", "ECHO":
		return nil
	}
	return args[1:2]
}

// keySlot is Redis Cluster's hash slot of a key (CRC16 of its hash tag).
func keySlot(key string) int {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}
