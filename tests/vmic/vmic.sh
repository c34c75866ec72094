#!/bin/sh
# Virtual microphone for tests on machines without a sound card (after ../shared/vmic, checked there).
#   tests/vmic/vmic.sh start [RATE]   start PulseAudio with a null sink; prints the env file to source
#   tests/vmic/vmic.sh stop
# Needs the Debian packages pulseaudio pulseaudio-utils libasound2-plugins libportaudio2 (.ci/run
# installs them). Chain: paplay -> null sink "vmic_sink" (clocked, real time) -> its monitor
# (the default source) -> ALSA "pulse" plugin -> PortAudio's ALSA device "default".
# Source the env file BEFORE importing sounddevice: PortAudio scans devices at import.
set -eu
D=${VMIC_DIR:-/tmp/ser-live-vmic}
RUN=$D/run
SOCK=$RUN/pulse.sock
export PULSE_SERVER=unix:$SOCK PULSE_COOKIE=$RUN/cookie PULSE_RUNTIME_PATH=$RUN

if [ "${1:-}" = stop ]; then
    for f in keepalive pulseaudio; do
        [ -f "$RUN/$f.pid" ] && kill "$(cat "$RUN/$f.pid")" 2>/dev/null || true
        rm -f "$RUN/$f.pid"
    done
    exit 0
fi
[ "${1:-}" = start ] || { echo "usage: $0 start [RATE] | stop" >&2; exit 2; }
RATE=${2:-16000}
for tool in pulseaudio pactl parec paplay; do
    command -v $tool >/dev/null 2>&1 || { echo "missing $tool (apt-get install pulseaudio pulseaudio-utils)" >&2; exit 3; }
done

mkdir -p "$RUN" "$D/state"
# ALSA's default PCM is PulseAudio, explicitly (Debian's 99-pulse.conf hook does the same only
# when the server is already up as the process starts).
cat > "$D/asound.conf" <<'CONF'
pcm.!default { type pulse }
ctl.!default { type pulse }
CONF
cat > "$D/env.sh" <<ENV
export PULSE_SERVER=unix:$SOCK
export PULSE_COOKIE=$RUN/cookie
export PULSE_RUNTIME_PATH=$RUN
export ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:$D/asound.conf
export VMIC_SINK=vmic_sink
ENV

if ! pactl info >/dev/null 2>&1; then
    PULSE_STATE_PATH=$D/state \
    setsid pulseaudio --daemonize=no -n --use-pid-file=no --exit-idle-time=-1 \
        --realtime=no --high-priority=no --disable-shm=yes \
        --log-target=file:$D/pulse.log \
        -L "module-native-protocol-unix auth-anonymous=1 auth-cookie-enabled=0 socket=$SOCK" \
        -L "module-null-sink sink_name=vmic_sink rate=$RATE channels=1 format=s16le norewinds=1 sink_properties=device.description=VirtualMic" \
        </dev/null >/dev/null 2>&1 &
    echo $! > "$RUN/pulseaudio.pid"
    i=0; until pactl info >/dev/null 2>&1; do
        i=$((i+1)); [ $i -gt 100 ] && { echo "pulseaudio did not start; see $D/pulse.log" >&2; exit 1; }
        sleep 0.1
    done
    pactl set-default-sink vmic_sink
    pactl set-default-source vmic_sink.monitor
    # keeps the null sink in low-latency mode (else a new capture stream waits up to ~2 s for data)
    setsid parec -d vmic_sink.monitor --latency-msec=10 --raw --client-name=vmic-keepalive \
        </dev/null >/dev/null 2>&1 &
    echo $! > "$RUN/keepalive.pid"
fi
echo "$D/env.sh"
