# basin: one non-recursive GNU Makefile.
#
#   make            release build: build/release/libbasin.a and ./basin
#   make test       build and run the test suite (last line: "N passed, N failed")
#   make bench      release benchmarks against the PyTorch peer (not part of test)
#   make sanitize   ASan + UBSan build of everything, then the test suite under it
#   make deps       install the Debian packages basin needs (needs root or sudo)
#   make lint       layering rules, headers compiled alone, cppcheck
#   make assets     regenerate assets/ (demo clips) with basin itself
#   make format     clang-format the sources
#   make clean
#
# Knobs: BUILD=release|debug|asan, WERROR=1 (CI), V=1 (show commands), QUICK=1 (tests:
# skip heavy end-to-end cases).

BUILD ?= release
O ?= build/$(BUILD)
CC ?= cc
ifeq ($(CC),cc)
CC := gcc
endif

Q := @
ifeq ($(V),1)
Q :=
endif

DEB_PACKAGES := build-essential pkg-config libncurses-dev libreadline-dev libsndfile1-dev \
    portaudio19-dev libfftw3-dev libopenblas-dev libjansson-dev libsoxr-dev libcairo2-dev sox tmux

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
ifeq ($(WERROR),1)
WARN += -Werror
endif

# Hot loops are aligned to cache lines: without it a 10 s log-mel varied by 40 % with where
# the linker happened to place the DSP code (measured on Zen 5).
OPT_release := -O3 -g -march=x86-64-v3 -DNDEBUG -falign-functions=64 -falign-loops=64
OPT_debug := -O0 -g3 -march=x86-64-v3
OPT_asan := -O1 -g -march=x86-64-v3 -fsanitize=address,undefined -fno-omit-frame-pointer \
    -fno-sanitize-recover=undefined
LDOPT_asan := -fsanitize=address,undefined
ifeq ($(filter $(BUILD),release debug asan),)
$(error BUILD must be release, debug or asan)
endif

CFLAGS_BASE := -std=gnu11 $(OPT_$(BUILD)) $(WARN) -fopenmp -fno-math-errno -Iinclude -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS_BASE := -fopenmp $(LDOPT_$(BUILD))

pc = $(shell pkg-config $(1) $(2) 2>/dev/null)

# Each external library is confined to one place (DESIGN.md section 1): its flags are given
# only to the files that may include it.
CFLAGS_src/core/gemm.c := $(call pc,--cflags,openblas)
CFLAGS_src/dsp/fft.c := $(call pc,--cflags,fftw3f)
CFLAGS_src/dsp/resample.c := $(call pc,--cflags,soxr)
CFLAGS_src/audio/audio_file.c := $(call pc,--cflags,sndfile)
CFLAGS_src/audio/device_portaudio.c := $(call pc,--cflags,portaudio-2.0)
CFLAGS_src/model/safetensors.c := $(call pc,--cflags,jansson)
CFLAGS_src/core/json.c := $(call pc,--cflags,jansson)
UI_CFLAGS := $(call pc,--cflags,ncursesw readline)
CFLAGS_ui/export.c := $(call pc,--cflags,cairo)
CFLAGS_tests/test_export.c := $(call pc,--cflags,cairo)

LIBS := $(call pc,--libs,openblas fftw3f soxr sndfile portaudio-2.0 jansson) -lm
UI_LIBS := $(call pc,--libs,ncursesw cairo) -lreadline

SRC := $(sort $(wildcard src/*/*.c))
UI_SRC := $(sort $(wildcard ui/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c tests/ref/*.c))
BENCH_SRC := $(sort $(wildcard tests/bench/*.c))
HEADERS := $(sort $(wildcard include/basin/*/*.h))

LIB := $(O)/libbasin.a
BIN := $(O)/basin
TESTBIN := $(O)/run_tests
BENCHBIN := $(O)/bench

.PHONY: all test bench sanitize deps lint format clean headers interop assets
.DEFAULT_GOAL := all

all: $(BIN)
	$(Q)ln -sf $(BIN) basin

# Objects depend on the flags they were built with: changing BUILD knobs, WERROR or
# EXTRA_CFLAGS rebuilds them.
FLAGS_FILE := $(O)/.cflags
$(shell mkdir -p $(O) && echo '$(CC) $(CFLAGS_BASE)' | cmp -s - $(FLAGS_FILE) || \
    echo '$(CC) $(CFLAGS_BASE)' > $(FLAGS_FILE))

$(O)/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_BASE) $(CFLAGS_$<) $(if $(filter ui/%,$<),$(UI_CFLAGS)) -c $< -o $@

$(LIB): $(SRC:%.c=$(O)/%.o)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): $(UI_SRC:%.c=$(O)/%.o) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_BASE) -o $@ $(UI_SRC:%.c=$(O)/%.o) $(LIB) $(LIBS) $(UI_LIBS)

# The tests link the UI's command layer too (everything in ui/ but main.c), so commands
# are tested headless in-process as well as through the binary.
UI_LIB_OBJ := $(filter-out $(O)/ui/main.o,$(UI_SRC:%.c=$(O)/%.o))
$(TESTBIN): $(TEST_SRC:%.c=$(O)/%.o) $(UI_LIB_OBJ) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_BASE) -o $@ $^ $(LIBS) $(UI_LIBS)

$(O)/tests/%.o: CFLAGS_BASE += -Itests -Iui
$(O)/tests/bench/%.o: CFLAGS_BASE += -Itests $(call pc,--cflags,openblas)

$(BENCHBIN): $(BENCH_SRC:%.c=$(O)/%.o) $(filter $(O)/tests/ref/%,$(TEST_SRC:%.c=$(O)/%.o)) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_BASE) -o $@ $^ $(LIBS)

# Every public header compiles alone (whisper.cpp's check): one translation unit per header.
HEADER_CHECKS := $(HEADERS:include/%.h=$(O)/headers/%.ok)
$(O)/headers/%.ok: include/%.h
	@mkdir -p $(dir $@)
	$(Q)printf '#include "%s"\n#include "%s"\n' $*.h $*.h | \
	    $(CC) -std=gnu11 $(WARN) -Iinclude -x c -fsyntax-only - && touch $@
headers: $(HEADER_CHECKS)

test: $(TESTBIN) $(BIN) headers
	$(Q)BASIN_BIN=$(abspath $(BIN)) ./$(TESTBIN) $(T)

sanitize:
	$(Q)LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	    $(MAKE) --no-print-directory BUILD=asan test

# Benchmarks run with OpenBLAS free to pick its best kernel (the environment pins it for
# tests); both the pinned variables are unset for the benchmark command alone.
bench: $(BENCHBIN) $(BIN)
	$(Q)env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE tests/bench/run.sh ./$(BENCHBIN) $(B)

# Cross-check against the PyTorch reference (needs python3-torch; not part of test).
interop: all $(O)/train_parity
	$(Q)REF_DIR=$(abspath ../shared/peers) BASIN=./basin TRAIN_PARITY=./$(O)/train_parity tests/interop/run.sh

$(O)/train_parity: $(O)/tests/interop/train_parity.o $(LIB)
	$(Q)$(CC) $(LDFLAGS_BASE) -o $@ $^ $(LIBS)

# What ships in assets/ is made by basin itself (assets/assets.basin): the demo clips and the
# default model, trained from scratch with a fixed seed.
assets: $(BIN)
	$(Q)rm -rf build/assets-run
	$(Q)start=$$(date +%s); $(BIN) --script assets/assets.basin && \
	    echo "make assets: $$(( $$(date +%s) - start )) s"

deps:
	$(Q)if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES)

# The layer table of DESIGN.md section 1: the basin/ headers each layer may include (its own,
# those below it, and what those expose).
LAYER_core := core
LAYER_dsp := core dsp
LAYER_audio := core audio
LAYER_model := core model
LAYER_data := core dsp audio data
LAYER_train := core dsp audio model data train
LAYER_analysis := core dsp audio model data train analysis

lint: headers
	$(Q)bad=0; for layer in core dsp audio model data train analysis; do \
	    allowed=$$(case $$layer in core) echo "$(LAYER_core)";; dsp) echo "$(LAYER_dsp)";; \
	        audio) echo "$(LAYER_audio)";; model) echo "$(LAYER_model)";; data) echo "$(LAYER_data)";; \
	        train) echo "$(LAYER_train)";; analysis) echo "$(LAYER_analysis)";; esac); \
	    for f in $$(ls src/$$layer/*.[ch] include/basin/$$layer/*.h 2>/dev/null); do \
	        for inc in $$(grep -oE '#include "basin/[a-z]+/' $$f | sed 's|.*basin/||; s|/$$||' | sort -u); do \
	            case " $$allowed " in *" $$inc "*) ;; \
	            *) echo "lint: $$f includes basin/$$inc/ (the $$layer layer may use: $$allowed)"; bad=1;; esac; \
	        done; \
	    done; \
	done; exit $$bad
	$(Q)! grep -rnE '\b(printf|fprintf|puts|perror|exit|abort)\s*\(' src include \
	    | grep -vE 'snprintf|vsnprintf|^src/core/status.c:.*abort\(\);' || \
	    { echo "lint: src/ must not print or exit (DESIGN.md section 1)"; exit 1; }
	$(Q)! grep -rnE '#include <(curses|ncurses|readline/)' src include || \
	    { echo "lint: src/ must not include UI headers"; exit 1; }
	$(Q)! grep -rln 'include "' include | xargs -r grep -lE '#include <(fftw3|sndfile|portaudio|jansson|cblas|soxr)' || \
	    { echo "lint: public headers must not include third-party headers"; exit 1; }
	$(Q)if command -v cppcheck >/dev/null; then \
	    cppcheck -q --error-exitcode=1 --enable=warning,portability --inline-suppr \
	        --suppress=missingIncludeSystem --suppress=invalidPointerCast -Iinclude src ui; fi

format:
	$(Q)clang-format -i $(SRC) $(UI_SRC) $(TEST_SRC) $(BENCH_SRC) $(HEADERS)

clean:
	rm -rf build basin

-include $(wildcard $(O)/*/*.d $(O)/*/*/*.d)
