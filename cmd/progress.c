/* Progress line on stderr (see progress.h). Only a terminal gets it: in a pipeline or a log
 * file, stderr carries messages, not carriage-return animations. */
#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#include "common.h"

#define REDRAW_SECONDS 0.25
#define ETA_AFTER_SECONDS 2.0

static cli_progress *shown; /* the progress line on the screen, erased before messages */

static void erase_shown(void)
{
	if (shown)
		cli_progress_clear(shown);
}

void cli_progress_init(cli_progress *p, int quiet, const char *unit, uint64_t total_bytes)
{
	*p = (cli_progress){0};
	shown = p;
	cli_before_message = erase_shown;
	p->on = !quiet && isatty(STDERR_FILENO);
	p->unit = unit;
	p->total = total_bytes;
	p->t0 = cli_now();
	p->next = p->t0; /* the first check draws, then every REDRAW_SECONDS */
}

/* "1.5 MiB", "3.2 GiB" */
static void human_bytes(char *out, size_t cap, double b)
{
	static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;
	while (b >= 1024 && i < 4) {
		b /= 1024;
		i++;
	}
	snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void human_time(char *out, size_t cap, double s)
{
	unsigned long t = (unsigned long)(s + 0.5);
	if (t >= 3600)
		snprintf(out, cap, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, cap, "%lu:%02lu", t / 60, t % 60);
}

/* Draws the line when REDRAW_SECONDS have passed; rows are shown when p->unit is set. */
static void draw(cli_progress *p, uint64_t rows, uint64_t bytes)
{
	double now = cli_now();
	if (now < p->next)
		return;
	p->next = now + REDRAW_SECONDS;
	double dt = now - p->t0;
	char b[32], rate[32], eta[48] = "", count[64] = "", of[48] = "";
	human_bytes(b, sizeof b, (double)bytes);
	human_bytes(rate, sizeof rate, dt > 0 ? (double)bytes / dt : 0);
	/* The fraction done: by rows when their total is known, else by bytes. */
	double done = p->total_rows && rows <= p->total_rows ? (double)rows / (double)p->total_rows
		      : p->total && bytes <= p->total	   ? (double)bytes / (double)p->total
							   : 0;
	/* The time left only once the rate means something: after the first seconds and the
	 * first percent (the first samples, taken while files open and caches fill, once gave
	 * "ETA 854:05:08"). */
	if (done > 0) {
		char t[24] = "--:--";
		if (dt >= ETA_AFTER_SECONDS && done >= 0.01)
			human_time(t, sizeof t, dt * (1 - done) / done);
		snprintf(eta, sizeof eta, "  %.0f%%  ETA %s", 100.0 * done, t);
	}
	if (p->unit)
		snprintf(count, sizeof count, "%llu %s  ", (unsigned long long)rows, p->unit);
	else if (p->total) {
		char t[32];
		human_bytes(t, sizeof t, (double)p->total);
		snprintf(of, sizeof of, " of %s", t);
	}
	if (p->unit && p->rows_only)
		fprintf(stderr, "\r%s: %s%.0f %s/s%s\033[K", cli_prog, count,
			dt > 0 ? (double)rows / dt : 0, p->unit, eta);
	else if (p->unit)
		fprintf(stderr, "\r%s: %s%s  %.0f %s/s  %s/s%s\033[K", cli_prog, count, b,
			dt > 0 ? (double)rows / dt : 0, p->unit, rate, eta);
	else
		fprintf(stderr, "\r%s: %s%s  %s/s%s\033[K", cli_prog, b, of, rate, eta);
	p->drawn = 1;
}

void cli_progress_update(cli_progress *p, uint64_t rows, uint64_t bytes)
{
	if (!p->on || (++p->calls & 255))
		return;
	draw(p, rows, bytes);
}

void cli_progress_now(cli_progress *p, uint64_t rows, uint64_t bytes)
{
	if (p->on)
		draw(p, rows, bytes);
}

void cli_progress_bytes(cli_progress *p, uint64_t done, uint64_t total)
{
	if (!p->on)
		return;
	p->total = total;
	draw(p, 0, done);
}

void cli_progress_rows(cli_progress *p, uint64_t done, uint64_t total)
{
	if (!p->on)
		return;
	p->rows_only = 1;
	p->total_rows = total;
	draw(p, done, 0);
}

void cli_progress_rows_cb(void *ctx, uint64_t done, uint64_t total)
{
	cli_progress_rows(ctx, done, total);
}

void cli_progress_bytes_cb(void *ctx, uint64_t done, uint64_t total)
{
	cli_progress_bytes(ctx, done, total);
}

void cli_progress_clear(cli_progress *p)
{
	if (p->drawn) {
		fputs("\r\033[K", stderr);
		p->drawn = 0;
	}
}

void cli_progress_end(cli_progress *p)
{
	cli_progress_clear(p);
	p->on = 0;
	if (shown == p)
		shown = NULL;
}
