// How the `aha` process takes its memory from the kernel (called first in main).
#pragma once

namespace aha::cli {

// Decode and training allocate the same large buffers every step and layer. With glibc's
// defaults each one above ~128 KiB is a fresh mmap (or a trimmed heap top), paid again in page
// faults and kernel zeroing every time: ~25% of `aha bench generate --batch 64` and ~17% of a
// small training step, whole process. Keeping freed memory in the heap removes that; peak
// memory is unchanged (the peak is the peak), only its return to the system waits for exit.
void keep_freed_memory();

// Runs this binary again (same pid, same arguments) with glibc's malloc told to ask for
// transparent huge pages on its heaps (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, read only at
// start-up), where the kernel hands them out on advice only. A GRPO step touches gigabytes of
// fresh activations in its first update, 4 KiB page by page, each fault a trip through the
// kernel; the buffers that aha allocates itself are advised already (advise_huge_pages), the
// many smaller vectors were not. Returns without exec when the kernel gives huge pages to every
// block or to none, when the tunable is already set, when AHA_HUGE_PAGES=0, or when the exec
// fails; after the exec it puts the caller's GLIBC_TUNABLES back for aha's child processes.
void heap_on_huge_pages(char** argv);

}  // namespace aha::cli
