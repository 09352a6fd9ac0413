package daemon

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// A cltab command is run by /bin/sh -c (SPEC 1). Most are one program
// and its words (`/usr/sbin/sshd -D`, `exec stamp FILE`), for which the
// shell does no more than split the words, search $PATH and exec the
// program in its own place: it is then started directly, as Perl's exec
// of a string without shell metacharacters does (Cluster::Init's
// starts). The process, its pid, arguments, environment and exit are
// those sh would have given; what is saved is the shell's own start and
// parse, about a millisecond of every start and respawn here. Anything
// else, or a direct start that fails, goes to /bin/sh, which does it and
// says what is wrong in its words.

// shellWords are the names sh would not look up in $PATH as a program's:
// the keywords and builtins of dash, bash and POSIX, each between
// spaces (a string, not a map: nothing to build when the process starts).
const shellWords = " ! . : [ [[ ]] { } alias bg bind break builtin caller case cd " +
	"command compgen complete compopt continue coproc declare dirs disown do done " +
	"echo elif else enable esac eval exec exit export false fc fg fi for function " +
	"getopts hash help history if in jobs kill let local logout mapfile popd printf " +
	"pushd pwd read readarray readonly return select set shift shopt source suspend " +
	"test then time times trap true type typeset ulimit umask unalias unset until " +
	"wait while "

// plainByte is a byte that sh gives no meaning of its own inside a word.
func plainByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("/._-+,:@%=", c) >= 0
}

// directWords returns the words of command when /bin/sh -c would run
// nothing but one program with them: words of plain bytes separated by
// blanks, an optional leading `exec`, no assignment before the program,
// and a program name that is not a keyword or builtin of the shell. It
// returns nil for anything else.
func directWords(command string) []string {
	words := strings.FieldsFunc(command, func(r rune) bool { return r == ' ' || r == '\t' })
	for i := 0; i < len(command); i++ {
		if c := command[i]; c != ' ' && c != '\t' && !plainByte(c) {
			return nil
		}
	}
	if len(words) > 1 && words[0] == "exec" && !strings.HasPrefix(words[1], "-") {
		words = words[1:]
	}
	if len(words) == 0 || strings.Contains(shellWords, " "+words[0]+" ") || strings.ContainsRune(words[0], '=') {
		return nil
	}
	return words
}

// dashPath is dash's $PATH when the environment has none.
const dashPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath finds name as sh would, in the $PATH of env: the first
// executable regular file of that name; a name with a slash is a path
// already. It returns "" when there is none, and sh is left to say so.
// Not os/exec's LookPath: that package is the reaper's alone, and its
// search uses the daemon's $PATH, not the child's, with no dash default.
func lookPath(name string, env []string) string {
	if strings.ContainsRune(name, '/') {
		return name
	}
	path := dashPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for dir := range strings.SplitSeq(path, ":") {
		if dir == "" {
			dir = "."
		}
		file := dir + "/" + name
		var st unix.Stat_t
		if unix.Stat(file, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && unix.Access(file, unix.X_OK) == nil {
			return file
		}
	}
	return ""
}

// shellPWD is the PWD that sh exports, as os.Getwd finds it: the one the
// environment has if it names the working directory, else the
// directory's path; "" if there is none.
func shellPWD() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	return wd
}
