# vuser build. `make` builds the libraries, tools and tests into $(BUILD);
# `make SAN=1` builds the same with AddressSanitizer and UBSan into build-san;
# `make check` builds and runs the test suite (tests/run.sh).

CC ?= cc
SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT ?= -O1 -g
else
BUILD ?= build
SANFLAGS :=
OPT ?= -O2 -g
endif

# -falign-functions=64: where a function lands otherwise depends on the size
# of everything linked before it, and that alone has moved a datapath by a
# quarter (docs/bench.md, "Where the code lands").
CFLAGS_COMMON := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-missing-field-initializers -fPIC \
	-D_GNU_SOURCE -Iinclude -Isrc $(OPT) -falign-functions=64 $(SANFLAGS)
LIB_CFLAGS := $(CFLAGS_COMMON) -fvisibility=hidden
LDLIBS := -lpthread

LIB_SRCS := $(wildcard src/base/*.c src/ring/*.c src/backend/*.c src/port/*.c src/vhost/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TOOLS := $(BUILD)/vuser-pmd $(BUILD)/linebounce
TEST_SRCS := $(wildcard tests/test_*.c)
TESTS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
# Programs the test scripts drive (not run on their own).
HELPER_SRCS := $(wildcard tests/helper_*.c)
TESTS += $(HELPER_SRCS:tests/%.c=$(BUILD)/tests/%)
HDRS := $(wildcard include/vuser/*.h include/vuser/uapi/*.h src/*/*.h)

all: $(BUILD)/libvuser.a $(BUILD)/libvuser.so $(TOOLS) $(TESTS)

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/libvuser.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libvuser.so: $(LIB_OBJS) src/libvuser.map
	$(CC) -shared $(SANFLAGS) -Wl,--version-script=src/libvuser.map -Wl,-soname,libvuser.so.0 \
		-o $@ $(LIB_OBJS) $(LDLIBS)

# Tools and tests link the static library: they run from the build tree.
$(BUILD)/vuser-pmd: tools/vuser-pmd.c $(BUILD)/libvuser.a $(HDRS)
	$(CC) $(CFLAGS_COMMON) $< -o $@ $(BUILD)/libvuser.a $(LDLIBS) -lm

# The bench's measure of a cache line's round trip between two cores.
$(BUILD)/linebounce: bench/linebounce.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $< -o $@ $(LDLIBS)

# Unit tests may reach internal symbols, so they link the objects directly.
$(BUILD)/tests/%: tests/%.c $(BUILD)/libvuser.a $(HDRS) tests/testlib.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Itests $< -o $@ $(BUILD)/libvuser.a $(LDLIBS)

check: all
	tests/run.sh $(BUILD)

clean:
	rm -rf build build-san

.PHONY: all check clean
