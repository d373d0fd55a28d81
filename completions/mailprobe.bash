# bash completion for mailprobe(1).
# The sub-commands come from `mailprobe help`, each command's options and what their
# values are from `mailprobe COMMAND --help`, at completion time: the completion
# cannot drift from the program it completes. An option line of --help reads
#   "  -o, --output FILE   text"    one space then a value name: the option takes one;
#   "  --offline           text"    two or more spaces: a switch.
# A value written a|b|c (lower case) is a fixed set; FILE, PATH, INPUT and *.mmdb are
# files, DIR a directory; anything else (NAME, N, DURATION) is left to the user.

_mailprobe_value_of()  # help-text option -> the value name it takes, or nothing
{
    local line re='^ +((-[a-zA-Z], )?(--[a-z0-9-]+, )*--?[a-z0-9-]+)( [^ ]+)?'
    while IFS= read -r line; do
        [[ $line =~ $re ]] || continue
        local opts=${BASH_REMATCH[1]} meta=${BASH_REMATCH[4]# }
        local o
        IFS=', ' read -r -a o <<<"$opts"
        local x
        for x in "${o[@]}"; do
            if [[ $x == "$2" ]]; then
                printf '%s\n' "$meta"
                return 0
            fi
        done
    done <<<"$1"
    return 1
}

_mailprobe()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local prog=${COMP_WORDS[0]}
    COMPREPLY=()
    # "--format=nd": readline splits at '=' (COMP_WORDBREAKS) into "--format" "=" "nd"
    if [[ $cur == "=" ]]; then
        cur=""
    elif [[ $prev == "=" ]] && ((COMP_CWORD >= 2)); then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi
    if ((COMP_CWORD == 1)); then
        local cmds
        cmds=$("$prog" help 2>/dev/null | awk '/^commands:/ {f = 1; next} f && /^  [a-z]/ {print $1}')
        COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
        return 0
    fi
    local help
    help=$("$prog" "${COMP_WORDS[1]}" --help 2>/dev/null) || return 0

    if [[ $prev == -* && $prev != "--" ]]; then
        local meta
        if meta=$(_mailprobe_value_of "$help" "$prev") && [[ -n $meta ]]; then
            case $meta in
            *[A-Z]*'|'* | *'|'*[A-Z]*) ;;
            *'|'*) COMPREPLY=($(compgen -W "${meta//|/ }" -- "$cur")) ;;
            DIR) COMPREPLY=($(compgen -d -- "$cur")) ;;
            FILE | FILE.* | PATH | INPUT) COMPREPLY=($(compgen -f -- "$cur")) ;;
            esac
            return 0
        fi
    fi
    if [[ $cur == -* ]]; then
        local opts
        opts=$(grep -E '^ +-' <<<"$help" | grep -oE '(^|[ ,])--?[a-z][a-z0-9-]*' | tr -d ' ,')
        COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
        return 0
    fi
    # operands: files where the usage line asks for an INPUT file
    if grep -q '^usage:.*INPUT' <<<"$help"; then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return 0
}

complete -o filenames -F _mailprobe mailprobe
