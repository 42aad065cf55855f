#!/usr/bin/env bash
# Check the relative links of every tracked Markdown file: each must name a file or directory
# inside this repository (a fresh clone has nothing outside it), and a `#anchor` into a Markdown
# file must match one of its headings (GitHub's slug: lower case, punctuation dropped, spaces to
# hyphens). Links with a scheme (https:, mailto:) are not fetched.
# Usage: scripts/check-links.sh          (exit 1 and one line per broken link)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)

slugs() { # <markdown file>: the anchors its headings produce, one per line
    grep -E '^#{1,6} ' "$1" | sed -E 's/^#+ +//; s/`//g' | tr '[:upper:]' '[:lower:]' |
        sed -E 's/[^a-z0-9 _-]//g; s/ /-/g'
}

bad=0
while IFS= read -r md; do
    dir=$(dirname "$md")
    # Inline links `](target)`, one per line; code spans are not excluded, so keep examples of
    # link syntax out of the docs or make them resolve.
    while IFS= read -r target; do
        case "$target" in
            http://* | https://* | mailto:*) continue ;;
        esac
        path=${target%%#*}
        anchor=""
        [[ "$target" == *"#"* ]] && anchor=${target#*#}
        if [ -z "$path" ]; then
            file="$md"
        else
            file="$dir/$path"
        fi
        if [ ! -e "$file" ]; then
            echo "$md: broken link ($target): $file does not exist"
            bad=1
            continue
        fi
        real=$(cd "$(dirname "$file")" && pwd -P)
        if [[ "$real" != "$root" && "$real" != "$root"/* ]]; then
            echo "$md: link leaves the repository ($target)"
            bad=1
            continue
        fi
        if [ -n "$anchor" ] && [[ "$file" == *.md ]] && ! slugs "$file" | grep -qxF "$anchor"; then
            echo "$md: no heading for #$anchor in $file"
            bad=1
        fi
    done < <(grep -oE '\]\([^) ]+\)' "$md" | sed -E 's/^\]\(//; s/\)$//')
done < <(git ls-files '*.md'; git ls-files --others --exclude-standard '*.md')

if [ "$bad" -ne 0 ]; then
    exit 1
fi
echo "markdown links: all resolve inside the repository"
