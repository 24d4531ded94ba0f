/*
 * icd10.h - ICD-10-SE chapters, sections (avsnitt) and the reference's diagnosis groups.
 *
 * Compiled-in tables as Intygsstatistik defines them (followup-statistics.md §2.3): 22
 * chapters, 264 sections, 7 diagnosis groups plus "Utan giltig ICD-10 kod".
 * Pure functions over constant tables; any thread.
 */
#ifndef INTYGSGW_ICD10_H
#define INTYGSGW_ICD10_H

#include <stdbool.h>
#include <stddef.h>

/* Diagnosis groups (§2.3). Values are stable: they are stored. */
enum icd10_group {
        ICD10_GROUP_UNKNOWN = 0,   /* Utan giltig ICD-10 kod (internal id Ö00-Ö00) */
        ICD10_GROUP_SOMATIC = 1,   /* Somatiska sjukdomar */
        ICD10_GROUP_PSYCH = 2,     /* Psykiska sjukdomar F00-F99 */
        ICD10_GROUP_MUSCULO = 3,   /* Muskuloskeletala sjukdomar M00-M99 */
        ICD10_GROUP_PREGNANCY = 4, /* Graviditet och förlossning O00-O99 */
        ICD10_GROUP_OTHER = 5,     /* Övrigt: P, Q, S-T, U, V-Y */
        ICD10_GROUP_SYMPTOM = 6,   /* Symtomdiagnoser R00-R99 */
        ICD10_GROUP_FACTORS = 7,   /* Faktorer av betydelse för hälsotillståndet Z00-Z99 */
};
#define ICD10_N_GROUPS   8
#define ICD10_N_CHAPTERS 22 /* chapter ids 1..22; 0 = unknown */

/** Where a code belongs. chapter/section 0 and group UNKNOWN for an invalid code. */
struct icd10_class {
        char category[4]; /* washed 3-character category ("F32"), "" if invalid */
        char code[8];     /* washed code without dot, at most 5 characters ("F321") */
        int chapter;      /* 1..22, 0 unknown */
        int section;      /* 1..icd10_n_sections(), 0 unknown */
        enum icd10_group group;
};

/**
 * Wash a code (upper-case; drop dots, spaces and a trailing '-' or '+'/'*' dagger marks;
 * keep at most 5 characters, At1117/At1208) and classify it. Returns true if the category
 * falls in a known section, else fills an UNKNOWN class and returns false.
 */
bool icd10_classify(const char *raw, struct icd10_class *out);

/** "A00-B99" for chapter 1..22, "Ö00-Ö00" for 0, NULL outside. */
const char *icd10_chapter_range(int chapter);

/** Number of sections in the compiled table. */
int icd10_n_sections(void);

/** "A00-A09" for section 1..n, "Ö00-Ö00" for 0, NULL outside. */
const char *icd10_section_range(int section);

/** Chapter of a section (1..22), 0 for 0 or outside. */
int icd10_section_chapter(int section);

/** Short stable id of a group ("somatic") and its Swedish label. NULL outside. */
const char *icd10_group_id(enum icd10_group g);
const char *icd10_group_label(enum icd10_group g);

/** Diagnosis group of a chapter 1..22 (0: UNKNOWN). */
enum icd10_group icd10_chapter_group(int chapter);

#endif
