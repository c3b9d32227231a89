/* Memtable: an insertion-ordered array of entries plus an open-addressing hash index on the
 * id. Vectors, string ids and payloads live in append-only arenas; a replaced vector's
 * space is not reclaimed (the table is discarded at the next seal anyway). */
#include "memtable.h"

#include <stdlib.h>
#include <string.h>

#include "ids.h"

void vdb_memtable_init(vdb_memtable *m, uint32_t dim)
{
	memset(m, 0, sizeof *m);
	m->dim = dim;
}

void vdb_memtable_free(vdb_memtable *m)
{
	free(m->entries);
	free(m->slots);
	free(m->vectors);
	vdb_buf_free(&m->strings);
	vdb_buf_free(&m->payloads);
	uint32_t dim = m->dim;
	vdb_memtable_init(m, dim);
}

void vdb_memtable_clear(vdb_memtable *m)
{
	m->n = 0;
	m->live = 0;
	m->upserts = 0;
	m->nfloats = 0;
	if (m->slots)
		memset(m->slots, 0, m->nslots * sizeof *m->slots);
	vdb_buf_reset(&m->strings);
	vdb_buf_reset(&m->payloads);
}

void vdb_memtable_entry_id(const vdb_memtable *m, const vdb_mem_entry *e, vdb_id *out)
{
	out->is_string = e->is_string;
	out->num = e->is_string ? 0 : e->id_num;
	out->str = e->is_string ? m->strings.data + e->id_num : NULL;
	out->len = e->is_string ? e->id_len : 0;
}

void vdb_memtable_entry_record(const vdb_memtable *m, const vdb_mem_entry *e, vdb_record *out)
{
	vdb_memtable_entry_id(m, e, &out->id);
	out->vector = m->vectors + e->vec;
	out->payload = e->has_payload ? m->payloads.data + e->payload_off : NULL;
	out->payload_len = e->has_payload ? e->payload_len : 0;
}

const vdb_mem_entry *vdb_memtable_find(const vdb_memtable *m, const vdb_id *id, uint64_t hash)
{
	if (!m->nslots)
		return NULL;
	size_t mask = m->nslots - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		uint32_t s = m->slots[i];
		if (!s)
			return NULL;
		const vdb_mem_entry *e = &m->entries[s - 1];
		if (e->hash == hash) {
			vdb_id other;
			vdb_memtable_entry_id(m, e, &other);
			if (vdb_id_equal(id, &other))
				return e;
		}
	}
}

static int grow_slots(vdb_memtable *m)
{
	size_t nslots = m->nslots ? m->nslots * 2 : 1024;
	uint32_t *slots = calloc(nslots, sizeof *slots);
	if (!slots)
		return -1;
	for (size_t k = 0; k < m->n; k++) {
		size_t i = m->entries[k].hash & (nslots - 1);
		while (slots[i])
			i = (i + 1) & (nslots - 1);
		slots[i] = (uint32_t)(k + 1);
	}
	free(m->slots);
	m->slots = slots;
	m->nslots = nslots;
	return 0;
}

/* Finds or adds the entry for id; returns NULL when out of memory. */
static vdb_mem_entry *entry_for(vdb_memtable *m, const vdb_id *id)
{
	uint64_t hash = vdb_id_hash(id);
	vdb_mem_entry *e = (vdb_mem_entry *)vdb_memtable_find(m, id, hash);
	if (e)
		return e;
	/* Keep the load factor under one half so probes stay short. */
	if ((m->n + 1) * 2 > m->nslots && grow_slots(m))
		return NULL;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		vdb_mem_entry *ne = realloc(m->entries, cap * sizeof *ne);
		if (!ne)
			return NULL;
		m->entries = ne;
		m->cap = cap;
	}
	size_t str_off = m->strings.len;
	if (id->is_string && vdb_buf_append(&m->strings, id->str, id->len))
		return NULL;
	e = &m->entries[m->n];
	memset(e, 0, sizeof *e);
	e->hash = hash;
	e->is_string = (uint8_t)id->is_string;
	e->id_num = id->is_string ? str_off : id->num;
	e->id_len = (uint32_t)id->len;
	e->deleted = 1; /* becomes live when the upsert below fills it */
	size_t i = hash & (m->nslots - 1);
	while (m->slots[i])
		i = (i + 1) & (m->nslots - 1);
	m->slots[i] = (uint32_t)(m->n + 1);
	m->n++;
	return e;
}

int vdb_memtable_upsert(vdb_memtable *m, const vdb_id *id, const float *vec, const char *payload,
			size_t payload_len)
{
	if (m->nfloats + m->dim > m->capfloats) {
		size_t cap = m->capfloats ? m->capfloats * 2 : (size_t)m->dim * 256;
		while (cap < m->nfloats + m->dim)
			cap *= 2;
		float *nv = realloc(m->vectors, cap * sizeof *nv);
		if (!nv)
			return -1;
		m->vectors = nv;
		m->capfloats = cap;
	}
	size_t poff = m->payloads.len;
	if (payload && vdb_buf_append(&m->payloads, payload, payload_len))
		return -1;
	vdb_mem_entry *e = entry_for(m, id);
	if (!e) {
		m->payloads.len = poff;
		return -1;
	}
	memcpy(m->vectors + m->nfloats, vec, (size_t)m->dim * sizeof *vec);
	e->vec = m->nfloats;
	m->nfloats += m->dim;
	e->has_payload = payload != NULL;
	e->payload_off = poff;
	e->payload_len = (uint32_t)payload_len;
	if (e->deleted)
		m->live++;
	e->deleted = 0;
	m->upserts++;
	return 0;
}

int vdb_memtable_delete(vdb_memtable *m, const vdb_id *id)
{
	vdb_mem_entry *e = entry_for(m, id);
	if (!e)
		return -1;
	if (!e->deleted)
		m->live--;
	e->deleted = 1;
	e->has_payload = 0;
	return 0;
}
