# bash completion for clinit: flags, and the groups and levels of the
# cltab given with -c (or /etc/cltab).
#   install: cp examples/clinit.bash /etc/bash_completion.d/clinit

# _clinit_cltab prints the cltab path of the command line being completed.
_clinit_cltab() {
  local i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      -c | --cltab) echo "${COMP_WORDS[i + 1]}"; return ;;
      --cltab=*) echo "${COMP_WORDS[i]#--cltab=}"; return ;;
    esac
  done
  echo /etc/cltab
}

_clinit() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  case $prev in
    -c | --cltab | -s | --socket | --clstat | --hactl | --state-dir | --log | --keyfile)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --node | --bind | --advertise | --join | --prefer) return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(clinit -h 2>/dev/null | grep -aoE -- '(^|[ ,])--?[a-z][a-z-]*' | tr -d ' ,' | sort -u)" -- "$cur"))
    return
  fi
  # The words so far that are not flags or their values: GROUP, LEVEL.
  local tab args=() i
  tab=$(_clinit_cltab)
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      -c | --cltab | -s | --socket | --clstat | --hactl | --state-dir | --log | --keyfile | --node | --bind | --advertise | --join | --prefer) ((i++)) ;;
      -*) ;;
      *) args+=("${COMP_WORDS[i]}") ;;
    esac
  done
  case ${#args[@]} in
    0) # groups
      COMPREPLY=($(compgen -W "$(awk -F: '!/^[[:space:]]*(#|$)/ && !/^:::/ { print $1 }' "$tab" 2>/dev/null | sort -u)" -- "$cur")) ;;
    1) # levels of that group (SPEC: with a comma, a list; else each character, and the whole field)
      COMPREPLY=($(compgen -W "$(awk -F: -v g="${args[0]}" '$1 == g {
          if (index($3, ",")) { n = split($3, a, ","); for (i = 1; i <= n; i++) if (a[i] != "") print a[i] }
          else { for (i = 1; i <= length($3); i++) print substr($3, i, 1); print $3 } }' "$tab" 2>/dev/null | sort -u)" -- "$cur")) ;;
  esac
}
complete -F _clinit clinit
