# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Bulk population of benchmark databases: copies of rows the ORM made.

The first record of a population is made with the ORM (its create, its
sequences, defaults, multi-value rows, posting...); the others are copies
of its rows inserted with python-sql, many rows per statement, with only
the columns that differ changed (names, numbers, links to the copies of
the other rows) and the stored computed columns recomputed by the model's
own `compute_fields`.  The copies are what the ORM would have made:
tests/test_bench_setup.py compares both on PostgreSQL, table by table.

Run inside a transaction of the benchmark's database.
"""
from sql import Table
from sql.functions import CurrentTimestamp

STAMPS = {'create_date', 'write_date'}


def _cursor():
    from trytond.transaction import Transaction
    return Transaction().connection.cursor()


def read_rows(table_name, column, value):
    "The rows (dictionaries) of `table_name` whose `column` is `value`"
    table = Table(table_name)
    cursor = _cursor()
    cursor.execute(*table.select(where=getattr(table, column) == value,
            order_by=[table.id.asc]))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def new_ids(table_name, count):
    "`count` ids taken from the table's id sequence (PostgreSQL), in order"
    cursor = _cursor()
    cursor.execute('SELECT nextval(%s) FROM generate_series(1, %s)',
        ('%s_id_seq' % table_name, count))
    return [i for i, in cursor]


def insert_copies(table_name, pattern, rows, ids=None):
    """Insert a copy of the row `pattern` (a dictionary) per dictionary of
    `rows` (the columns to change); return the new ids, in order (`ids`:
    taken before with `new_ids`, for rows that point to each other)."""
    unknown = {n for c in rows for n in c} - pattern.keys()
    if unknown:
        raise ValueError('%s has no column %s' % (
                table_name, ', '.join(sorted(unknown))))
    return insert_rows(table_name, [{**pattern, **c} for c in rows],
        ids=ids)


def insert_rows(table_name, rows, ids=None):
    """Insert `rows` (dictionaries of the same columns, copies of rows the
    ORM made) with new ids; return them, in order.  The timestamps are the
    transaction's (as the ORM's), a write date only where the row had
    one.  PostgreSQL: one COPY per table (a multi-row INSERT of thousands
    of parameters spends seconds in the driver's query parsing)."""
    from trytond import backend
    if not rows:
        return []
    names = [n for n in rows[0] if n != 'id']
    cursor = _cursor()
    if backend.name == 'sqlite':
        # no sequence to take ids from: one row at a time
        table = Table(table_name)
        columns = [getattr(table, n) for n in names]
        ids = []
        for row in rows:
            cursor.execute(*table.insert(columns, [[
                            CurrentTimestamp() if n in STAMPS
                            and row[n] is not None else row[n]
                            for n in names]]))
            ids.append(cursor.lastrowid)
        return ids
    from psycopg.sql import SQL, Identifier
    if ids is None:
        ids = new_ids(table_name, len(rows))
    cursor.execute('SELECT CAST(CURRENT_TIMESTAMP AS timestamp)')
    now, = cursor.fetchone()
    statement = SQL('COPY {} ({}) FROM STDIN').format(
        Identifier(table_name),
        SQL(', ').join(Identifier(n) for n in ['id'] + names))
    with cursor.copy(statement) as copy:
        for id_, row in zip(ids, rows, strict=True):
            copy.write_row([id_] + [
                    now if n in STAMPS and row[n] is not None else row[n]
                    for n in names])
    return ids


def clone(table_name, row_id, rows):
    """Insert a copy of row `row_id` of `table_name` per dictionary of
    `rows` (the columns to change) and return the new ids"""
    pattern, = read_rows(table_name, 'id', row_id)
    return insert_copies(table_name, pattern, rows)


def clone_children(table_name, column, parent_id, parent_ids, rows=None):
    """Copy the rows of `table_name` pointing (`column`) to `parent_id`
    once for each of `parent_ids`, `rows` (one dictionary per parent) the
    other columns to change; the copies of each pattern row are inserted
    together, in the parents' order (as the ORM creates a One2Many or a
    multi-value field of many records).  Return {pattern row id: ids}."""
    result = {}
    for pattern in read_rows(table_name, column, parent_id):
        changes = rows or [{}] * len(parent_ids)
        result[pattern['id']] = insert_copies(table_name, pattern, [
                {**c, column: p}
                for p, c in zip(parent_ids, changes, strict=True)])
    return result


def multivalue_tables(table_name, column):
    """The tables of the multi-value fields of a model (named
    `<table>_<field>`, with a `column` foreign key to it): the rows the ORM
    creates with each record"""
    cursor = _cursor()
    cursor.execute("SELECT c.conrelid::regclass::text "
        "FROM pg_constraint c JOIN pg_attribute a "
        "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "WHERE c.contype = 'f' AND c.confrelid = %s::regclass "
        "AND a.attname = %s ORDER BY 1", (table_name, column))
    return [t.strip('"') for t, in cursor
        if t.strip('"').startswith(table_name + '_')]


def computed(Model, values):
    """`values` with the stored computed columns the model derives from
    them (e.g. a number's `number_alnum`, `number_digit`)"""
    record = Model(**values)
    return {**values, **record.compute_fields(field_names=set(values))}


def clone_parties(pattern_id, rows, addresses=None, contacts=None):
    """Copies of party `pattern_id` with its multi-value rows, its address
    and contact mechanism (one of each in the pattern, changed by the
    dictionaries of `addresses` / `contacts` when given); `rows` the
    party columns to change (the code is taken from the party sequence
    when not given).  Return the new party ids and {table: ids}."""
    from trytond.pool import Pool
    pool = Pool()
    Party = pool.get('party.party')
    Mechanism = pool.get('party.contact_mechanism')
    pattern, = read_rows('party_party', 'id', pattern_id)
    if pattern['code'] is not None:
        sequence = Party._code_sequence()
        codes = sequence.get_many(len(rows)) if sequence else None
        rows = [r if 'code' in r or not codes
            else {**r, 'code': next(codes)} for r in rows]
    ids = insert_copies('party_party', pattern,
        [computed(Party, r) for r in rows])
    children = {}
    for table in multivalue_tables('party_party', 'party'):
        children[table] = clone_children(table, 'party', pattern_id, ids)
    children['party_address'] = clone_children(
        'party_address', 'party', pattern_id, ids, addresses)
    if contacts is not None:
        contacts = [computed(Mechanism, {'type': 'email', **c})
            for c in contacts]
    children['party_contact_mechanism'] = clone_children(
        'party_contact_mechanism', 'party', pattern_id, ids, contacts)
    return ids, children
