#!/usr/bin/env bash
# Firmware CI: format-check and lint the board crates (separate cargo projects, so the
# workspace's `cargo fmt`/`cargo clippy` never see them, and they hold the firmware's `unsafe`),
# build the board binaries for thumbv7em-none-eabihf, run the scripted serial session against the
# QEMU board (mps2-an386) to a successful exit, and print the footprint.
# Installs nothing but the Rust target and the rustfmt and clippy components; qemu-system-arm
# comes from the caller (Debian package `qemu-system-arm`). Environment: CARGO_TARGET_DIR
# (default: <repo>/target).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
target=thumbv7em-none-eabihf
budget=$((128 * 1024))

rustup target add "$target" >/dev/null
rustup component add rustfmt clippy >/dev/null
command -v qemu-system-arm >/dev/null || { echo "qemu-system-arm not found: apt-get install qemu-system-arm" >&2; exit 1; }

for board in "$here"/boards/*/; do
    echo "== lint: $(basename "$board") board (cargo fmt --check, cargo clippy --release -D warnings)"
    (cd "$board" && cargo fmt --check && cargo clippy --release --locked -- -D warnings)
done

echo "== build: QEMU board (mps2-an386)"
(cd "$here/boards/qemu-mps2" && cargo build --release --locked)
if [ -d "$here/boards/nrf52840" ]; then
    echo "== build: nRF52840 board (not run)"
    (cd "$here/boards/nrf52840" && cargo build --release --locked)
fi
echo "== build: host session driver"
(cd "$root" && cargo build -p aqm-firmware --features std --example qemu_session --example flash_footprint)

elf="$CARGO_TARGET_DIR/$target/release/aqm-qemu-mps2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
head -c 32 /dev/urandom > "$work/seed.bin"
port=$((20000 + RANDOM % 20000))

echo "== run: QEMU session on 127.0.0.1:$port"
timeout 300 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none \
    -semihosting-config enable=on,target=native \
    -serial "tcp:127.0.0.1:$port,server=on,wait=on" \
    -device "loader,file=$work/seed.bin,addr=0x21fff000,force-raw=on" \
    -kernel "$elf" > "$work/qemu.log" 2>&1 &
qemu=$!
status=0
timeout 240 "$CARGO_TARGET_DIR/debug/examples/qemu_session" "127.0.0.1:$port" || status=$?
qstatus=0
wait "$qemu" || qstatus=$?
grep -v '^FOOTPRINT' "$work/qemu.log" | sed 's/^/qemu: /'
if [ "$status" -ne 0 ] || [ "$qstatus" -ne 0 ]; then
    echo "QEMU session FAILED (driver $status, qemu $qstatus)" >&2
    exit 1
fi
echo "== QEMU session passed (qemu exit 0)"

sizer="$(command -v arm-none-eabi-size || command -v size || command -v llvm-size || true)"
if [ -z "$sizer" ]; then
    echo "no size tool found (Debian package binutils): footprint tables skipped" >&2
    exit 0
fi
sec() { "$sizer" -A "$elf" | awk -v s="$1" '$1 == s { print $2 }'; }
text=$(( $(sec .vector_table) + $(sec .text) ))
rodata=$(sec .rodata)
data=$(sec .data)
bss=$(( $(sec .bss) + $(sec .uninit) ))
static_ram=$((data + bss))

echo
echo "== footprint: QEMU board image (thumbv7em-none-eabihf, release, opt-level s, fat LTO)"
echo "| Section | Bytes |"
echo "|---------|-------|"
echo "| .text (with vector table) | $text |"
echo "| .rodata | $rodata |"
echo "| flash image (.text + .rodata + .data) | $((text + rodata + data)) |"
echo "| .data | $data |"
echo "| .bss (+ .uninit) | $bss |"
echo
echo "== footprint: RAM per command (static .data + .bss = $static_ram B, plus the stack peak; budget 128 KiB)"
echo "| Command | Stack peak | RAM total | Within 128 KiB |"
echo "|---------|-----------|-----------|----------------|"
grep '^FOOTPRINT stack ' "$work/qemu.log" | sed 's/^FOOTPRINT stack //' | while read -r line; do
    peak="${line##* }"
    name="${line% *}"
    total=$((peak + static_ram))
    verdict=yes
    [ "$total" -le "$budget" ] || verdict="NO (+$(( (total - budget + 1023) / 1024 )) KiB)"
    printf '| %s | %d B (%d KiB) | %d KiB | %s |\n' "$name" "$peak" $(( (peak + 1023) / 1024 )) $(( (total + 1023) / 1024 )) "$verdict"
done
echo
echo "== footprint: flash per stored coin"
"$CARGO_TARGET_DIR/debug/examples/flash_footprint"
